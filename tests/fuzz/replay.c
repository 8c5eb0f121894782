/* A main() for the fuzz targets where libFuzzer is not linked (the normal
 * and sanitized builds, with gcc): runs every file of the given files and
 * directories through LLVMFuzzerTestOneInput once, in name order -- the
 * seed corpus as regression inputs in ctest. A crash or a sanitizer report
 * fails the test. */
#include "fuzz_input.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return 1;
    }
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0, got;
    do {
        if (len == cap) {
            cap = cap ? 2 * cap : 4096;
            uint8_t *nb = realloc(buf, cap);
            if (!nb)
                abort();
            buf = nb;
        }
        got = fread(buf + len, 1, cap - len, f);
        len += got;
    } while (got > 0);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, len);
    free(buf);
    return 0;
}

static int cmp(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv)
{
    int bad = 0, n = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            perror(argv[i]);
            return 1;
        }
        if (!S_ISDIR(st.st_mode)) {
            bad |= run_file(argv[i]);
            n++;
            continue;
        }
        struct dirent **list = NULL;
        int m = scandir(argv[i], &list, NULL, cmp);
        for (int k = 0; k < m; k++) {
            char p[4096];
            snprintf(p, sizeof p, "%s/%s", argv[i], list[k]->d_name);
            if (list[k]->d_name[0] != '.' && stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
                bad |= run_file(p);
                n++;
            }
            free(list[k]);
        }
        free(list);
    }
    printf("%d inputs run\n", n);
    return bad || n == 0;
}
