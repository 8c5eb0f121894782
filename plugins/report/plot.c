/* A thin layer over PLplot's C API for the report's figures.
 *
 * PLplot keeps one global stream and, on a fatal error, calls plexit(),
 * which exits the process even when a user handler is installed (the
 * handler's return value only becomes the exit status). A plugin must never
 * exit, so the handler installed here never returns: it longjmps back into
 * rep_render(), which turns the message into a status. Drawing code between
 * plinit and plend therefore holds no resources of its own: every figure
 * prepares its arrays before rendering and frees them after.
 */
#include "report.h"

#include "batchscope/fsutil.h"

#include <math.h>
#include <plplot.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static jmp_buf *jump_to;
static char pl_error[512];
static int page_w, page_h;
static double win_x0, win_x1;
/* The colors the figure being drawn has drawn data in, so that a legend of
 * the runs (a color each; the style, which figures vary for train and test,
 * changes only past the palette's size) can tell which have no data in it. */
static unsigned char drawn[REP_N_COLORS];

static void mark_drawn(int color)
{
    if (color >= 0 && color < REP_N_COLORS)
        drawn[color] = 1;
}

static int on_plexit(const char *msg)
{
    snprintf(pl_error, sizeof pl_error, "%s", msg && *msg ? msg : "PLplot stopped");
    if (jump_to)
        longjmp(*jump_to, 1);
    /* Unreachable while a figure renders; outside one PLplot is not in use. */
    return 1;
}

static void on_plabort(const char *msg)
{
    /* plabort() is a recoverable error of one call; keep the first one and
     * fail the figure at the end instead of letting PLplot print it. */
    if (!pl_error[0])
        snprintf(pl_error, sizeof pl_error, "%s", msg ? msg : "PLplot call failed");
}

/* Okabe & Ito's palette, readable by color-blind readers and in gray; one
 * entry per run, in the report's order of runs. */
static const unsigned char bs_palette[REP_N_BS_COLORS][3] = {
    {0x00, 0x72, 0xB2}, {0xD5, 0x5E, 0x00}, {0x00, 0x9E, 0x73}, {0xCC, 0x79, 0xA7},
    {0xE6, 0x9F, 0x00}, {0x56, 0xB4, 0xE9}, {0x59, 0x59, 0x59}, {0xF0, 0xE4, 0x42},
};

void rep_color_hex(int color, char *buf, size_t len)
{
    if (color >= REP_COL_BS0 && color < REP_COL_BS0 + REP_N_BS_COLORS) {
        const unsigned char *c = bs_palette[color - REP_COL_BS0];
        snprintf(buf, len, "#%02X%02X%02X", c[0], c[1], c[2]);
    } else {
        snprintf(buf, len, "#000000");
    }
}

static void set_colors(void)
{
    plscmap0n(REP_N_COLORS);
    plscol0(REP_COL_BG, 255, 255, 255);
    plscol0(REP_COL_FG, 0, 0, 0);
    plscol0(REP_COL_GRID, 0xDD, 0xDD, 0xDD);
    plscol0(REP_COL_MUTED, 0x80, 0x80, 0x80);
    plscol0(REP_COL_LOSS, 0x1B, 0x1B, 0x1B);
    plscol0(REP_COL_ACC, 0xA0, 0x3C, 0x1E);
    for (int i = 0; i < REP_N_BS_COLORS; i++)
        plscol0(REP_COL_BS0 + i, bs_palette[i][0], bs_palette[i][1], bs_palette[i][2]);
}

/* Batch sizes on a log2 axis are labelled as the numbers themselves. */
static void log2_label(PLINT axis, PLFLT value, char *label, PLINT length, PLPointer data)
{
    (void)axis;
    (void)data;
    double v = exp2(value);
    if (fabs(value - round(value)) < 1e-6)
        snprintf(label, (size_t)length, "%.0f", v);
    else
        snprintf(label, (size_t)length, "%.3g", v);
}

/* A colorbar over log10 values is labelled with the values themselves. */
static void pow10_label(PLINT axis, PLFLT value, char *label, PLINT length, PLPointer data)
{
    (void)axis;
    (void)data;
    snprintf(label, (size_t)length, "%.2g", pow(10, value));
}

void rep_label_pow10(int on)
{
    plslabelfunc(on ? pow10_label : log2_label, NULL);
}

/* One output format. The file appears under its name only when complete. */
static bsc_status render_one(rep_fig *f, const char *dev, const char *path, int w, int h,
                             rep_draw_fn draw, const rep *r, const void *data)
{
    char *tmp = bsc_strdup_printf("%s.tmp.%ld", path, (long)getpid());
    if (!tmp)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    /* A signal while PLplot writes must not leave the temporary behind. */
    bsc_temporary_track(tmp);
    jmp_buf env;
    pl_error[0] = '\0';
    page_w = w;
    page_h = h;
    plsexit(on_plexit);
    plsabort(on_plabort);
    jump_to = &env;
    if (setjmp(env) == 0) {
        plsdev(dev);
        plsfnam(tmp);
        plspage(0, 0, w, h, 0, 0);
        set_colors();
        plinit();
        plslabelfunc(log2_label, NULL);
        plschr(0, 1.0);
        pladv(0);
        memset(drawn, 0, sizeof drawn);
        draw(r, data);
        plend();
    } else if (setjmp(env) == 0) {
        /* Closing the stream PLplot gave up on may fail again; the second
         * jump lands in the branch below and leaves it be. */
        plend();
    }
    jump_to = NULL;
    plsexit(NULL);
    plsabort(NULL);
    bsc_status s = BSC_OK;
    if (pl_error[0]) {
        remove(tmp);
        s = bsc_fail(BSC_ERR_PLUGIN, "figure %s (%s): PLplot: %s", f->name, dev, pl_error);
    } else if (rename(tmp, path) != 0) {
        remove(tmp);
        s = bsc_fail(BSC_ERR_IO, "%s: cannot write the figure", path);
    }
    bsc_temporary_untrack(tmp);
    free(tmp);
    return s;
}

bsc_status rep_render(rep *r, rep_fig *f, int width, int height, rep_draw_fn draw,
                      const void *data)
{
    bsc_status s = BSC_OK;
    char *png = bsc_strdup_printf("%s/%s.png", r->fig_dir, f->name);
    char *svg = bsc_strdup_printf("%s/%s.svg", r->fig_dir, f->name);
    if (!png || !svg)
        s = bsc_fail(BSC_ERR_NOMEM, "out of memory");
    if (s == BSC_OK && r->png)
        s = render_one(f, "pngcairo", png, width, height, draw, r, data);
    /* The page inlines the SVG, so it is drawn whenever there is a page;
     * it stays on disk only when svg is one of the formats. PLplot's own svg
     * driver writes text as text and uses no ids, so several of its files
     * can share one HTML page. */
    if (s == BSC_OK && (r->svg || r->html))
        s = render_one(f, "svg", svg, width, height, draw, r, data);
    if (s == BSC_OK && r->html) {
        free(f->svg);
        f->svg = NULL;
        s = bsc_read_file(svg, &f->svg, NULL);
    }
    if (s == BSC_OK && !r->svg)
        remove(svg);
    if (s == BSC_OK)
        f->made = 1;
    free(png);
    free(svg);
    return s;
}

int rep_page_width(void) { return page_w; }
int rep_page_height(void) { return page_h; }

void rep_viewport(double x0, double x1, double y0, double y1)
{
    plvpor(x0, x1, y0, y1);
}

/* Margins in pixels, so text keeps its room whatever the page size. */
#define PANEL_LEFT 175.0
#define PANEL_TOP 80.0
#define PANEL_BOTTOM 110.0
#define PANEL_HGAP 240.0
#define PANEL_VGAP 130.0

void rep_panel(int col, int row, int ncols, int nrows, int right_px)
{
    double W = page_w, H = page_h;
    double pw = (W - PANEL_LEFT - right_px - (ncols - 1) * PANEL_HGAP) / ncols;
    double ph = (H - PANEL_TOP - PANEL_BOTTOM - (nrows - 1) * PANEL_VGAP) / nrows;
    double x0 = PANEL_LEFT + col * (pw + PANEL_HGAP);
    double ytop = PANEL_TOP + row * (ph + PANEL_VGAP);
    plvpor(x0 / W, (x0 + pw) / W, 1.0 - (ytop + ph) / H, 1.0 - ytop / H);
}

double rep_tx(double v, int kind)
{
    if (kind == REP_AX_LIN)
        return v;
    if (!(v > 0) || !isfinite(v))
        return NAN;
    return kind == REP_AX_LOG10 ? log10(v) : log2(v);
}

static void axis_opts(int kind, const char *base, char *out, size_t len)
{
    snprintf(out, len, "%s%s", base, kind == REP_AX_LOG10 ? "l" : kind == REP_AX_LOG2 ? "o" : "");
}

/* A log10 axis label: plain numbers where they are short, m×10^e else. */
static void log_label(double v, char *buf, size_t len)
{
    int e = (int)floor(log10(v) + 1e-9);
    double m = v / pow(10, e);
    if (e >= -3 && e <= 3)
        snprintf(buf, len, "%.*f", e < 0 ? -e : 0, v);
    else if (fabs(m - 1) < 1e-6)
        snprintf(buf, len, "10#u%d#d", e);
    else
        snprintf(buf, len, "%.0f×10#u%d#d", m, e);
}

/* PLplot labels a log axis at powers of ten only, which leaves a range
 * inside one decade with one label or none; label 1-2-5 values instead. */
static void log_labels(double lo, double hi, int y_axis)
{
    static const double ladder[3][3] = {{1, 0, 0}, {1, 3, 0}, {1, 2, 5}};
    double span = hi - lo;
    /* More decades than labels fit: leave the axis to PLplot. */
    if (!(span > 0) || span > 60)
        return;
    const double *m = ladder[span > 3 ? 0 : span > 1.6 ? 1 : 2];
    for (int e = (int)floor(lo) - 1; e <= (int)ceil(hi); e++)
        for (int k = 0; k < 3 && m[k] > 0; k++) {
            double v = m[k] * pow(10, e), lv = log10(v);
            if (lv < lo - 1e-9 || lv > hi + 1e-9)
                continue;
            char buf[48];
            log_label(v, buf, sizeof buf);
            double pos = (lv - lo) / span;
            if (y_axis)
                plmtex("lv", 0.7, pos, 1.0, buf);
            else
                plmtex("b", 1.6, pos, 0.5, buf);
        }
}

void rep_sane_range(double *lo, double *hi)
{
    /* Beyond this PLplot's tick arithmetic overflows; no figure needs it. */
    const double big = 1e300;
    int flo = isfinite(*lo) && fabs(*lo) < big, fhi = isfinite(*hi) && fabs(*hi) < big;
    if (!flo && !fhi) {
        *lo = 0;
        *hi = 1;
    } else if (!flo || !fhi) {
        double v = flo ? *lo : *hi;
        *lo = v - (v != 0 ? fabs(v) * 0.1 : 1);
        *hi = v + (v != 0 ? fabs(v) * 0.1 : 1);
    } else if (*lo > *hi) {
        double t = *lo;
        *lo = *hi;
        *hi = t;
    }
    if (!(*hi - *lo > 1e-12 * fmax(fabs(*lo), fabs(*hi))) || !isfinite(*hi - *lo)) {
        double v = 0.5 * *lo + 0.5 * *hi, d = v != 0 ? fabs(v) * 0.1 : 1;
        *lo = v - d;
        *hi = v + d;
    }
}

void rep_axes(double xmin, double xmax, int xkind, double ymin, double ymax, int ykind,
              const char *xlabel, const char *ylabel, const char *title)
{
    /* Every range reaches PLplot through here or rep_axis_right: an empty
     * or non-finite one (a column that is all NaN) would make plbox loop
     * forever. */
    rep_sane_range(&xmin, &xmax);
    rep_sane_range(&ymin, &ymax);
    char xo[16], yo[16], xg[16], yg[16];
    /* log2 axes tick at every power of two (more than 12 would crowd). */
    double xt = xkind == REP_AX_LOG2 ? (xmax - xmin > 12 ? 2 : 1) : 0;
    int xs = xkind == REP_AX_LOG2 ? 1 : 0;
    double yt = ykind == REP_AX_LOG2 ? 1 : 0;
    int ys = ykind == REP_AX_LOG2 ? 1 : 0;
    win_x0 = xmin;
    win_x1 = xmax;
    plwind(xmin, xmax, ymin, ymax);
    axis_opts(xkind, "g", xg, sizeof xg);
    axis_opts(ykind, "g", yg, sizeof yg);
    plcol0(REP_COL_GRID);
    pllsty(1);
    plwidth(1.0);
    plbox(xg, xt, xs, yg, yt, ys);
    axis_opts(xkind, xkind == REP_AX_LOG10 ? "bcst" : "bcnst", xo, sizeof xo);
    axis_opts(ykind, ykind == REP_AX_LOG10 ? "bst" : "bnstv", yo, sizeof yo);
    plcol0(REP_COL_FG);
    plwidth(1.5);
    plbox(xo, xt, xs, yo, yt, ys);
    if (xkind == REP_AX_LOG10)
        log_labels(xmin, xmax, 0);
    if (ykind == REP_AX_LOG10)
        log_labels(ymin, ymax, 1);
    /* the right edge as a plain line, so a right-hand axis can add its own */
    plbox("", 0, 0, "c", 0, 0);
    plwidth(1.0);
    if (xlabel)
        plmtex("b", 3.0, 0.5, 0.5, xlabel);
    if (ylabel)
        plmtex("l", 5.6, 0.5, 0.5, ylabel);
    if (title)
        plmtex("t", 1.3, 0.5, 0.5, title);
}

void rep_axis_right(double ymin, double ymax, const char *label, int color)
{
    rep_sane_range(&ymin, &ymax);
    plwind(win_x0, win_x1, ymin, ymax);
    plcol0(color);
    plwidth(1.5);
    plbox("", 0, 0, "cmstv", 0, 0);
    plwidth(1.0);
    if (label)
        plmtex("r", 4.2, 0.5, 0.5, label);
    plcol0(REP_COL_FG);
}

void rep_line(size_t n, const double *x, const double *y, int color, int style, double width)
{
    plcol0(color);
    pllsty(style > 0 ? style : 1);
    plwidth(width);
    size_t i = 0;
    while (i < n) {
        while (i < n && !(isfinite(x[i]) && isfinite(y[i])))
            i++;
        size_t start = i;
        while (i < n && isfinite(x[i]) && isfinite(y[i]))
            i++;
        if (i - start >= 2)
            plline((PLINT)(i - start), x + start, y + start);
        else if (i - start == 1)
            plstring(1, x + start, y + start, "•");
        if (i > start)
            mark_drawn(color);
    }
    pllsty(1);
    plwidth(1.0);
    plcol0(REP_COL_FG);
}

static const char *symbol_glyph(int symbol)
{
    switch (symbol) {
    case 1: return "●";
    case 2: return "■";
    case 3: return "▲";
    case 4: return "◆";
    case 5: return "▼";
    default: return "○";
    }
}

/* World units per pixel of the current viewport and window. */
static void world_per_px(double *wx, double *wy)
{
    PLFLT vx0, vx1, vy0, vy1, x0, x1, y0, y1;
    plgvpd(&vx0, &vx1, &vy0, &vy1);
    plgvpw(&x0, &x1, &y0, &y1);
    *wx = (x1 - x0) / ((vx1 - vx0) * page_w);
    *wy = (y1 - y0) / ((vy1 - vy0) * page_h);
}

int rep_panel_height_px(void)
{
    PLFLT vx0, vx1, vy0, vy1;
    plgvpd(&vx0, &vx1, &vy0, &vy1);
    return (int)((vy1 - vy0) * page_h);
}

double rep_px_x(double px)
{
    double wx, wy;
    world_per_px(&wx, &wy);
    return px * wx;
}

double rep_px_y(double px)
{
    double wx, wy;
    world_per_px(&wx, &wy);
    return px * wy;
}

/* Markers are drawn as polygons rather than font glyphs: a glyph's box
 * sits on the text baseline, so it would not be centered on the point. */
void rep_points(size_t n, const double *x, const double *y, int color, int symbol,
                double scale)
{
    static const double square[4][2] = {{-1, -1}, {-1, 1}, {1, 1}, {1, -1}};
    static const double triangle[3][2] = {{-1.1, -0.8}, {0, 1.2}, {1.1, -0.8}};
    static const double diamond[4][2] = {{0, -1.3}, {-1.3, 0}, {0, 1.3}, {1.3, 0}};
    double wx, wy, r = 7.0 * scale;
    world_per_px(&wx, &wy);
    for (size_t i = 0; i < n; i++) {
        if (!(isfinite(x[i]) && isfinite(y[i])))
            continue;
        mark_drawn(color);
        PLFLT px[25], py[25];
        int m = 0;
        const double(*shape)[2] = NULL;
        if (symbol == 2)
            shape = square, m = 4;
        else if (symbol == 3)
            shape = triangle, m = 3;
        else if (symbol == 4)
            shape = diamond, m = 4;
        else if (symbol == 5)
            shape = triangle, m = 3;
        if (shape) {
            for (int k = 0; k < m; k++) {
                double sy = symbol == 5 ? -shape[k][1] : shape[k][1];
                px[k] = x[i] + shape[k][0] * r * wx;
                py[k] = y[i] + sy * r * wy;
            }
        } else {
            double rr = symbol == 0 ? 0.45 * r : r;
            for (m = 0; m < 24; m++) {
                px[m] = x[i] + rr * cos(2 * M_PI * m / 24) * wx;
                py[m] = y[i] + rr * sin(2 * M_PI * m / 24) * wy;
            }
        }
        plcol0(color);
        plfill(m, px, py);
        if (symbol != 0) {
            /* a thin dark outline keeps light colors visible on white */
            px[m] = px[0];
            py[m] = py[0];
            plcol0(REP_COL_FG);
            plwidth(1.0);
            plline(m + 1, px, py);
        }
    }
    plcol0(REP_COL_FG);
}

void rep_range(size_t n, const double *v, double *lo, double *hi)
{
    *lo = INFINITY;
    *hi = -INFINITY;
    for (size_t i = 0; i < n; i++)
        if (isfinite(v[i])) {
            if (v[i] < *lo)
                *lo = v[i];
            if (v[i] > *hi)
                *hi = v[i];
        }
}

void rep_pad(double *lo, double *hi, double frac)
{
    if (!(*lo <= *hi)) {
        *lo = 0;
        *hi = 1;
        return;
    }
    double span = *hi - *lo;
    if (span <= 0)
        span = *lo != 0 ? fabs(*lo) * 0.1 : 1;
    *lo -= frac * span;
    *hi += frac * span;
}

void rep_legend_add(rep_legend *l, const char *text, int color, int style, int symbol)
{
    if (l->n >= 16)
        return;
    l->text[l->n] = text;
    l->color[l->n] = color;
    l->style[l->n] = style;
    l->symbol[l->n] = symbol;
    l->n++;
}

void rep_legend_runs(const rep *r, rep_legend *l)
{
    for (size_t i = 0; i < r->n_runs && l->n < 16; i++) {
        const rep_run *run = &r->runs[i];
        int c = run->color;
        if (c >= 0 && c < REP_N_COLORS && drawn[c]) {
            rep_legend_add(l, run->label, c, run->style, 0);
        } else {
            snprintf(l->own[l->n], sizeof l->own[l->n], "%s: no data", run->label);
            rep_legend_add(l, l->own[l->n], -1, 1, 0);
        }
    }
}

/* Characters, not bytes: the legends hold UTF-8 (≤, Σ). PLplot's escapes
 * (#d, #u) take no room. */
static int text_chars(const char *s)
{
    int n = 0;
    for (; *s; s++) {
        if (*s == '#' && s[1] && strchr("dufbr", s[1])) {
            s++;
            continue;
        }
        n += ((unsigned char)*s & 0xC0) != 0x80;
    }
    return n;
}

int rep_legend_text_px(const char *text)
{
    /* the box's margins and line sample, then about 17 px a character at
     * the legend's text size (measured on the PNGs) */
    return 140 + 17 * text_chars(text);
}

int rep_legend_px(const rep *r, int base)
{
    int px = base;
    for (size_t i = 0; i < r->n_runs; i++)
        if (rep_legend_text_px(r->runs[i].label) > px)
            px = rep_legend_text_px(r->runs[i].label);
    return px;
}

void rep_legend_draw(const rep_legend *l, int outside)
{
    if (l->n == 0)
        return;
    PLINT opt[16], tcol[16], lcol[16], lsty[16], scol[16], snum[16];
    PLFLT lwid[16], sscale[16];
    const char *sym[16];
    for (int i = 0; i < l->n; i++) {
        int header = l->color[i] < 0;
        opt[i] = header ? PL_LEGEND_NONE
                        : PL_LEGEND_LINE | (l->symbol[i] ? PL_LEGEND_SYMBOL : 0);
        if (!header && l->style[i] < 0)
            opt[i] = PL_LEGEND_SYMBOL;
        tcol[i] = REP_COL_FG;
        lcol[i] = header ? REP_COL_FG : l->color[i];
        lsty[i] = l->style[i] > 0 ? l->style[i] : 1;
        lwid[i] = 2.5;
        scol[i] = lcol[i];
        snum[i] = 1;
        sscale[i] = 0.7;
        sym[i] = symbol_glyph(l->symbol[i]);
    }
    /* Outside the panel the legend has the page's right margin: text that
     * would run off the page is drawn smaller instead. */
    double text_scale = 0.85, xoff = outside == 2 ? 0.14 : outside ? 0.03 : 0.02;
    if (outside) {
        PLFLT vx0, vx1, vy0, vy1;
        plgvpd(&vx0, &vx1, &vy0, &vy1);
        double avail = (1.0 - vx1 - xoff * (vx1 - vx0)) * page_w - 10;
        int need = 0;
        for (int i = 0; i < l->n; i++)
            if (rep_legend_text_px(l->text[i]) > need)
                need = rep_legend_text_px(l->text[i]);
        if (need > avail && need > 140)
            text_scale = fmax(0.45, 0.85 * (avail - 140) / (need - 140));
    }
    PLFLT w, h;
    pllegend(&w, &h, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX,
             /* outside: beside the panel, its top at the panel's top */
             outside ? PL_POSITION_RIGHT | PL_POSITION_OUTSIDE | PL_POSITION_VIEWPORT
                     : PL_POSITION_RIGHT | PL_POSITION_TOP | PL_POSITION_INSIDE |
                           PL_POSITION_VIEWPORT,
             xoff, 0.02, 0.05, REP_COL_BG, REP_COL_MUTED, 1,
             l->n, 1, l->n, opt, 0.6, text_scale, 2.0, 0.0, tcol, (const char *const *)l->text, NULL,
             NULL, NULL, NULL, lcol, lsty, lwid, scol, sscale, snum,
             (const char *const *)sym);
    plcol0(REP_COL_FG);
}

void rep_text_up(double x, double y, int color, double scale, const char *text)
{
    plcol0(color);
    plschr(0, scale);
    /* the glyphs of upward text lie left of its baseline: centre them on x */
    plptex(x + rep_px_x(7 * scale), y, 0, 1, 0.0, text);
    plschr(0, 1.0);
    plcol0(REP_COL_FG);
}

void rep_text(double x, double y, double just, int color, double scale, const char *text)
{
    plcol0(color);
    plschr(0, scale);
    plptex(x, y, 1, 0, just, text);
    plschr(0, 1.0);
    plcol0(REP_COL_FG);
}

void rep_band(size_t n, const double *x, const double *lo, const double *hi, int color)
{
    PLINT r, g, b;
    PLFLT a;
    PLFLT *px = malloc(2 * n * sizeof *px + 1), *py = malloc(2 * n * sizeof *py + 1);
    if (!px || !py) {
        free(px);
        free(py);
        return;
    }
    plgcol0a(color, &r, &g, &b, &a);
    plscol0a(color, r, g, b, 0.22);
    plcol0(color);
    /* one polygon per stretch of defined points: a gap stays a gap */
    size_t i = 0;
    while (i < n) {
        while (i < n && !(isfinite(x[i]) && isfinite(lo[i]) && isfinite(hi[i])))
            i++;
        size_t start = i, m = 0;
        while (i < n && isfinite(x[i]) && isfinite(lo[i]) && isfinite(hi[i]))
            i++;
        for (size_t j = start; j < i; j++) {
            px[m] = x[j];
            py[m++] = hi[j];
        }
        for (size_t j = i; j-- > start;) {
            px[m] = x[j];
            py[m++] = lo[j];
        }
        if (m >= 4)
            plfill((PLINT)m, px, py);
    }
    plscol0a(color, r, g, b, a);
    plcol0(REP_COL_FG);
    free(px);
    free(py);
}
