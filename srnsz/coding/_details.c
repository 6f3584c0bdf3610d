/* srnsz.coding.context.curvature_details in C: the detail of every target of a pass from its views' cubic and
 * linear spline predictions, one pass over the data instead of numpy's ten. It must give the bytes numpy gives
 * (tests compare them): the same float64 operations in the same order, no contraction into fused multiply-adds.
 * Loaded with ctypes; the module init below only lets setuptools build it as an extension. */
#include <Python.h>
#include <math.h>
#include <stdint.h>

#define N_DETAILS 16

/* out[i] = the detail of sum over views v of (cubic[v][i] - linear[v][i]) (NaN where a difference is not finite),
 * divided by ``divisor`` (n_views * bin width): 8 +- the number of edges at or below its magnitude, 15 if NaN. */
void srnsz_curvature_details(const double *const *cubic, const double *const *linear, int64_t n_views, int64_t n,
                             double divisor, uint8_t *out) {
    for (int64_t i = 0; i < n; i++) {
        double sum = 0.0;
        for (int64_t v = 0; v < n_views; v++) {
            double gap = cubic[v][i] - linear[v][i];
            sum += isfinite(gap) ? gap : NAN;
        }
        double g = sum / divisor;
        if (isnan(g)) { out[i] = N_DETAILS - 1; continue; }
        double magnitude = fabs(g);
        int bucket = (magnitude >= 0.125) + (magnitude >= 0.25) + (magnitude >= 0.5) + (magnitude >= 1.0) +
                     (magnitude >= 2.0) + (magnitude >= 4.0);
        out[i] = (uint8_t)(g > 0 ? 8 + bucket : 8 - bucket);
    }
}

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_details", NULL, -1, NULL};

PyMODINIT_FUNC PyInit__details(void) { return PyModule_Create(&module); }
