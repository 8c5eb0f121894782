/* Grid coordinates: evenly spaced, with exact endpoints. (A grid resumes
 * through the host's unit records, one per row: see surface.c.) */
#include "analyses.h"

double ana_linspace(double a, double b, int n, int i)
{
    if (n <= 1)
        return a;
    /* Endpoints exact; interior points a + i*step in one rounding. */
    if (i == n - 1)
        return b;
    return a + (b - a) * (double)i / (double)(n - 1);
}
