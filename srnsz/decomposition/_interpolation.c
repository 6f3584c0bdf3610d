/* srnsz.decomposition.interpolation.predict_odd (linear and cubic) in C: the odd points of every line along one axis
 * of a strided lattice view, predicted from the even ones. It must give the bits numpy gave (tests compare them
 * with the numpy formulas): float64 arithmetic in the same order, no contraction into fused multiply-adds.
 * Loaded with ctypes; the module init below only lets setuptools build it as an extension. */
#include <Python.h>
#include <stdint.h>

#define MAX_DIMS 32

/* v[k] of the current line, as float64 */
#define AT(k) (is_double ? *(const double *)(line + (k) * step) : (double)*(const float *)(line + (k) * step))

/* SZ3's formulas near the ends of a line (interpolation.py's boundary rules), for odd point j of a line of n. */
static inline double boundary(const char *line, int64_t step, int is_double, int64_t n, int64_t j, int cubic) {
    int has_r1 = j + 1 <= n - 1, has_l3 = j >= 3, has_r3 = j + 3 <= n - 1;
    if (has_r1 && cubic && has_l3 && has_r3)
        return (-AT(j - 3) + 9.0 * AT(j - 1) + 9.0 * AT(j + 1) - AT(j + 3)) / 16.0;
    if (has_r1 && cubic && has_r3) return (3.0 * AT(j - 1) + 6.0 * AT(j + 1) - AT(j + 3)) / 8.0;
    if (has_r1 && cubic && has_l3) return (-AT(j - 3) + 6.0 * AT(j - 1) + 3.0 * AT(j + 1)) / 8.0;
    if (has_r1) return (AT(j - 1) + AT(j + 1)) * 0.5;
    if (has_l3 && cubic && j >= 5) return (3.0 * AT(j - 5) - 10.0 * AT(j - 3) + 15.0 * AT(j - 1)) / 8.0;
    if (has_l3) return 1.5 * AT(j - 1) - 0.5 * AT(j - 3);
    return AT(j - 1);
}

/* out (shape of v with n // 2 along ``axis``, float64, byte strides out_strides) = the predictions of v's odd points
 * along ``axis`` (v: float32 or float64, ``itemsize`` 4 or 8, byte strides ``strides``); ``cubic`` 0: linear. */
void srnsz_predict_odd(const char *v, int64_t itemsize, int64_t ndim, const int64_t *shape, const int64_t *strides,
                       int64_t axis, int64_t cubic, double *out, const int64_t *out_strides) {
    int is_double = itemsize == 8;
    int64_t n = shape[axis], half = n / 2, step = strides[axis], out_step = out_strides[axis];
    int64_t lo, stop;
    if (cubic) { lo = 1; stop = n >= 7 ? (n - 5) / 2 + 1 : 1; }
    else { lo = 0; stop = (n - 1) / 2; }
    int64_t index[MAX_DIMS] = {0};
    for (int64_t d = 0; d < ndim; d++)
        if (d != axis && shape[d] == 0) return;
    for (;;) {
        const char *line = v;
        char *target = (char *)out;
        for (int64_t d = 0; d < ndim; d++) {
            line += index[d] * strides[d];
            target += index[d] * out_strides[d];
        }
        for (int64_t i = 0; i < half; i++) {
            int64_t j = 2 * i + 1;
            double value;
            if (i >= lo && i < stop) {
                if (cubic) {
                    value = AT(j - 1) + AT(j + 1);
                    value *= 9.0;
                    value -= AT(j - 3);
                    value -= AT(j + 3);
                    value /= 16.0;
                } else {
                    value = (AT(j - 1) + AT(j + 1)) * 0.5;
                }
            } else {
                value = boundary(line, step, is_double, n, j, (int)cubic);
            }
            *(double *)(target + i * out_step) = value;
        }
        /* the next line: an odometer over every axis but ``axis`` */
        int64_t d = ndim - 1;
        for (; d >= 0; d--) {
            if (d == axis) continue;
            if (++index[d] < shape[d]) break;
            index[d] = 0;
        }
        if (d < 0) return;
    }
}

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_interpolation", NULL, -1, NULL};

PyMODINIT_FUNC PyInit__interpolation(void) { return PyModule_Create(&module); }
