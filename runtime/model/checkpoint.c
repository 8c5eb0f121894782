/* Checkpoints: the model's tensors as safetensors, named like the matching
 * torch.nn.Sequential's state_dict ("1.weight"), PyTorch layouts. */
#include "batchscope/model.h"

#include "batchscope/safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bsc_status bsc_checkpoint_save(bsc_model *m, const char *path, long batch_size, int epoch)
{
    bsc_context *ctx = bsc_model_context(m);
    size_t np = bsc_model_n_params(m), ns = bsc_model_n_state(m), nt = bsc_model_n_tensors(m);
    float *params = malloc((np ? np : 1) * sizeof(float));
    float *state = malloc((ns ? ns : 1) * sizeof(float));
    bsc_st_entry *e = calloc(nt ? nt : 1, sizeof *e);
    bsc_status s = params && state && e ? BSC_OK : bsc_fail(BSC_ERR_NOMEM, "out of memory");
    if (s == BSC_OK)
        s = bsc_tensor_read(ctx, bsc_model_params(m), params);
    if (s == BSC_OK && ns)
        s = bsc_tensor_read(ctx, bsc_model_state(m), state);
    if (s == BSC_OK) {
        for (size_t i = 0; i < nt; i++) {
            const bsc_model_tensor *t = bsc_model_tensor_at(m, i);
            e[i].name = t->name;
            e[i].shape = t->spec.shape;
            e[i].data = (t->spec.role == BSC_ROLE_STATE ? state : params) + t->offset;
        }
        char bs[32], ep[32];
        snprintf(bs, sizeof bs, "%ld", batch_size);
        snprintf(ep, sizeof ep, "%d", epoch);
        const char *keys[] = {"format", "batch_size", "epoch"};
        const char *vals[] = {"pt", bs, ep};
        s = bsc_safetensors_write(path, e, nt, keys, vals, 3);
    }
    free(params);
    free(state);
    free(e);
    return s;
}

bsc_status bsc_checkpoint_load(const bsc_model *m, const char *path, float *params, float *state)
{
    bsc_safetensors *f = NULL;
    bsc_status s = bsc_safetensors_open(path, &f);
    if (s != BSC_OK)
        return s;
    for (size_t i = 0; s == BSC_OK && i < bsc_model_n_tensors(m); i++) {
        const bsc_model_tensor *t = bsc_model_tensor_at(m, i);
        const bsc_st_info *info = bsc_safetensors_find(f, t->name);
        if (!info) {
            s = bsc_fail(BSC_ERR_DATA, "%s: no tensor '%s' (does the checkpoint belong to "
                         "this model?)", path, t->name);
            break;
        }
        if (!bsc_shape_equal(&info->shape, &t->spec.shape)) {
            char a[64], b[64];
            bsc_shape_format(&info->shape, a, sizeof a);
            bsc_shape_format(&t->spec.shape, b, sizeof b);
            s = bsc_fail(BSC_ERR_DATA, "%s: tensor '%s' has shape %s, the model needs %s", path,
                         t->name, a, b);
            break;
        }
        float *dst = (t->spec.role == BSC_ROLE_STATE ? state : params) + t->offset;
        s = bsc_safetensors_read(f, t->name, dst, t->numel);
    }
    bsc_safetensors_close(f);
    return s;
}
