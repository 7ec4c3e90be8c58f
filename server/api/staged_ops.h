/*
 * staged_ops: what the API answers about staged activation (docs/ha.md,
 * "Staged activation"): key-status's activation_deadline and
 * activation_waiting_for, filled from ha/staging.c on the active node.
 */
#ifndef CS_STAGED_OPS_H
#define CS_STAGED_OPS_H

#include "custos.pb-c.h"

struct cs_api_env;

#define CS_STAGED_MAX_NAMES 16

/* Storage for the strings ks points into; lives as long as ks. */
typedef struct cs_staged_key_status {
  char names[CS_STAGED_MAX_NAMES][64];
  char *ptrs[CS_STAGED_MAX_NAMES];
} cs_staged_key_status;

/* Sets ks->activation_deadline and ks->activation_waiting_for when the
 * keyring holds a staged term (nothing otherwise). */
void cs_staged_key_status_fill(struct cs_api_env *d, Custos__KeyStatusRes *ks,
                               cs_staged_key_status *st);

#endif
