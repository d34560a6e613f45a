// fm_update.c: the public functions of the update kernels, which call the level chosen once at run time.
// The kernels themselves are compiled with the activations' (fm_update_impl.h is included by
// fm_activations_impl.h, in fm_activations.c, fm_activations_avx2.c and fm_activations_avx512.c), and the
// level is the activations' too: one table and one choice (fm_activation_level_current) for every
// elementwise kernel.
#include "fm_activations.h"
#include "fm_update.h"

const char *fm_update_isa(void) { return fm_activation_isa(); }

// The public functions (contracts in fm_update.h) call the current level's kernel.
void fm_supdate(ptrdiff_t size, float *P, const float *G, float *S1, float *S2, const fm_step *step)
{
    fm_activation_level_current()->supdate(size, P, G, S1, S2, step);
}
void fm_dupdate(ptrdiff_t size, double *P, const double *G, double *S1, double *S2, const fm_step *step)
{
    fm_activation_level_current()->dupdate(size, P, G, S1, S2, step);
}
void fm_sadd_penalty(ptrdiff_t size, float *G, const float *W, float l2, float l1)
{
    fm_activation_level_current()->sadd_penalty(size, G, W, l2, l1);
}
void fm_dadd_penalty(ptrdiff_t size, double *G, const double *W, double l2, double l1)
{
    fm_activation_level_current()->dadd_penalty(size, G, W, l2, l1);
}
void fm_scolumn_sums(ptrdiff_t rows, ptrdiff_t cols, const float *D, float *out, float scale)
{
    fm_activation_level_current()->scolumn_sums(rows, cols, D, out, scale);
}
void fm_dcolumn_sums(ptrdiff_t rows, ptrdiff_t cols, const double *D, double *out, double scale)
{
    fm_activation_level_current()->dcolumn_sums(rows, cols, D, out, scale);
}
