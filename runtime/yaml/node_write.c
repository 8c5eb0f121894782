/* The YAML layer's writer: a bsc_node tree as block-style YAML, used for
 * OUT/pipeline.yaml. */
#include "batchscope/node.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

static int emit_node(yaml_emitter_t *e, const bsc_node *n)
{
    yaml_event_t ev;
    if (n->kind == BSC_NODE_SCALAR) {
        /* A scalar that was quoted stays quoted so "12" stays a string; any
         * other text goes out plain when libyaml finds that safe and quoted
         * otherwise (its analysis catches ": ", leading "-", "#" ...). */
        int q = n->quoted;
        if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (const yaml_char_t *)n->value,
                                          (int)strlen(n->value), !q, 1,
                                          q ? YAML_DOUBLE_QUOTED_SCALAR_STYLE
                                            : YAML_ANY_SCALAR_STYLE))
            return 0;
        return yaml_emitter_emit(e, &ev);
    }
    if (n->kind == BSC_NODE_MAP) {
        if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE) ||
            !yaml_emitter_emit(e, &ev))
            return 0;
    } else if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
                                                     YAML_BLOCK_SEQUENCE_STYLE) ||
               !yaml_emitter_emit(e, &ev)) {
        return 0;
    }
    for (size_t i = 0; i < n->n; i++) {
        if (n->kind == BSC_NODE_MAP && !emit_node(e, n->keys[i]))
            return 0;
        if (!emit_node(e, n->items[i]))
            return 0;
    }
    if (n->kind == BSC_NODE_MAP)
        return yaml_mapping_end_event_initialize(&ev) && yaml_emitter_emit(e, &ev);
    return yaml_sequence_end_event_initialize(&ev) && yaml_emitter_emit(e, &ev);
}

bsc_status bsc_node_write_file(const bsc_node *root, const char *path)
{
    bsc_status st = BSC_OK;
    yaml_emitter_t e;
    yaml_event_t ev;
    int have_emitter = 0;
    FILE *f = NULL;
    size_t len = strlen(path);
    char *tmp = malloc(len + 5);
    if (!tmp)
        return bsc_fail(BSC_ERR_NOMEM, "out of memory");
    memcpy(tmp, path, len);
    memcpy(tmp + len, ".tmp", 5);
    if (!(f = fopen(tmp, "wb"))) {
        st = bsc_fail(BSC_ERR_IO, "%s: %s", tmp, strerror(errno));
        goto cleanup;
    }
    if (!yaml_emitter_initialize(&e)) {
        st = bsc_fail(BSC_ERR_NOMEM, "out of memory initializing the YAML emitter");
        goto cleanup;
    }
    have_emitter = 1;
    yaml_emitter_set_output_file(&e, f);
    yaml_emitter_set_unicode(&e, 1);
    yaml_emitter_set_indent(&e, 2);
    yaml_emitter_set_width(&e, -1); /* never fold long values */
    if (!yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) ||
        !yaml_emitter_emit(&e, &ev) ||
        !yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) ||
        !yaml_emitter_emit(&e, &ev) || !emit_node(&e, root) ||
        !yaml_document_end_event_initialize(&ev, 1) || !yaml_emitter_emit(&e, &ev) ||
        !yaml_stream_end_event_initialize(&ev) || !yaml_emitter_emit(&e, &ev) ||
        !yaml_emitter_flush(&e)) {
        st = bsc_fail(BSC_ERR_IO, "%s: writing YAML: %s", path,
                      e.problem ? e.problem : "emitter error");
        goto cleanup;
    }
    if (fflush(f) != 0 || ferror(f)) {
        st = bsc_fail(BSC_ERR_IO, "%s: %s", tmp, strerror(errno));
        goto cleanup;
    }
    if (fclose(f) != 0) {
        f = NULL;
        st = bsc_fail(BSC_ERR_IO, "%s: %s", tmp, strerror(errno));
        goto cleanup;
    }
    f = NULL;
    if (rename(tmp, path) != 0)
        st = bsc_fail(BSC_ERR_IO, "renaming %s to %s: %s", tmp, path, strerror(errno));
cleanup:
    if (have_emitter)
        yaml_emitter_delete(&e);
    if (f)
        fclose(f);
    if (st != BSC_OK)
        remove(tmp);
    free(tmp);
    return st;
}
