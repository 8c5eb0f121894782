/* Signal handlers of the command. Everything a handler calls is
 * async-signal-safe: write(2), unlink(2), rename(2), raise(3), sigaction(2)
 * and the library's functions documented as such; messages are assembled
 * by hand, not with printf. */
#include "signals.h"

#include "batchscope/fsutil.h"
#include "batchscope/plugin_call.h"
#include "batchscope/study.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

/* Appends s to buf[*n..len). */
static void put(char *buf, size_t *n, size_t len, const char *s)
{
    for (; s && *s && *n + 1 < len; s++)
        buf[(*n)++] = *s;
    buf[*n] = '\0';
}

static void die_of(int sig)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_DFL;
    sigaction(sig, &sa, NULL);
    raise(sig);
    _exit(128 + sig);
}

/* ---------------------------------------------------------------- crashes */

static void on_crash(int sig)
{
    bsc_plugin_call c;
    char reason[1024], line[1200];
    size_t n = 0, m = 0;
    int in_plugin = bsc_plugin_call_current(&c);
    put(reason, &n, sizeof reason, sig == SIGBUS ? "SIGBUS" : "SIGSEGV");
    if (in_plugin && !c.type) {
        /* its constructors, or its entry point */
        put(reason, &n, sizeof reason, " while loading the plugin ");
        put(reason, &n, sizeof reason, c.path ? c.path : "?");
    } else if (in_plugin) {
        put(reason, &n, sizeof reason, " in plugin ");
        put(reason, &n, sizeof reason, c.plugin ? c.plugin : "?");
        if (c.path) {
            put(reason, &n, sizeof reason, " (");
            put(reason, &n, sizeof reason, c.path);
            put(reason, &n, sizeof reason, ")");
        }
        if (c.type) {
            put(reason, &n, sizeof reason, ", type ");
            put(reason, &n, sizeof reason, c.type);
        }
        put(reason, &n, sizeof reason, ", op ");
        put(reason, &n, sizeof reason, c.op ? c.op : "?");
    } else {
        put(reason, &n, sizeof reason, " outside plugin code (in batchscope or a library)");
    }
    put(line, &m, sizeof line, "batchscope: crashed: ");
    put(line, &m, sizeof line, reason);
    if (bsc_study_mark_crashed(reason))
        put(line, &m, sizeof line, " (manifest.json marked crashed)");
    put(line, &m, sizeof line, "\n");
    if (write(STDERR_FILENO, line, m) < 0) {
        /* nothing left to tell it to */
    }
    bsc_temporaries_unlink();
    die_of(sig);
}

void cli_catch_crashes(void)
{
    /* Its own stack: a stack overflow is a SIGSEGV too. */
    static char alt[1 << 16];
    stack_t ss;
    memset(&ss, 0, sizeof ss);
    ss.ss_sp = alt;
    ss.ss_size = sizeof alt;
    sigaltstack(&ss, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_crash;
    sa.sa_flags = SA_ONSTACK | SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
}

/* -------------------------------------------------------------- stopping */

static volatile sig_atomic_t stop;

static void on_stop(int sig)
{
    if (stop) {
        /* Asked twice: stop now, leaving no half-written file behind. */
        bsc_temporaries_unlink();
        die_of(sig);
    }
    stop = 1;
}

int cli_stop_requested(void *user)
{
    (void)user;
    return stop != 0;
}

static void catch_three(void (*handler)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
}

void cli_catch_stop(void)
{
    catch_three(on_stop);
}

static void on_abort(int sig)
{
    bsc_temporaries_unlink();
    die_of(sig);
}

void cli_catch_abort(void)
{
    catch_three(on_abort);
}
