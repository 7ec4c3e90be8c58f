/*
 * Unit tests for keyring term states: every (from, to) pair of the
 * transition table, the keyring operations built on it, encoding of every
 * state, old keyrings without states, and the retired-term read error.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "activation.h"
#include "barrier.h"
#include "cs_error.h"
#include "custos.pb-c.h"
#include "keyring.h"
#include "secmem.h"

static const cs_term_state ALL[] = {CS_TERM_STAGED, CS_TERM_ACTIVE, CS_TERM_DECRYPT_ONLY,
                                    CS_TERM_RETIRED};

static void test_table(void **state) {
  (void)state;
  for (size_t i = 0; i < 4; i++)
    for (size_t j = 0; j < 4; j++) {
      int want = (ALL[i] == CS_TERM_STAGED && ALL[j] == CS_TERM_ACTIVE) ||
                 (ALL[i] == CS_TERM_DECRYPT_ONLY && ALL[j] == CS_TERM_RETIRED);
      assert_int_equal(cs_term_transition_allowed(ALL[i], ALL[j]), want);
    }
  assert_string_equal(cs_term_state_name(CS_TERM_DECRYPT_ONLY), "decrypt-only");
  assert_string_equal(cs_term_state_name(CS_TERM_STAGED), "staged");
}

static cs_term_state state_of(const cs_keyring *k, uint32_t term) {
  cs_term_info ti;
  assert_int_equal(cs_keyring_term_info(k, term, &ti), 0);
  return ti.state;
}

/* A ring holding one term in each state: 1 retired, 2 decrypt-only,
 * 3 active, 4 staged. */
static cs_keyring *ring_of_every_state(void) {
  cs_keyring *k;
  uint32_t t;
  assert_int_equal(cs_keyring_new(&k), 0);
  assert_int_equal(cs_keyring_rotate(k, 100, &t), 0);
  assert_int_equal(t, 1);
  assert_int_equal(cs_keyring_rotate(k, 200, &t), 0);
  assert_int_equal(cs_keyring_rotate(k, 300, &t), 0);
  assert_int_equal(cs_keyring_stage(k, 400, &t), 0);
  assert_int_equal(t, 4);
  assert_int_equal(cs_keyring_transition(k, 1, CS_TERM_RETIRED, 500), 0);
  return k;
}

static void test_every_pair_on_a_ring(void **state) {
  (void)state;
  uint32_t term_in[5] = {0, CS_TERM_RETIRED, CS_TERM_DECRYPT_ONLY, CS_TERM_ACTIVE, CS_TERM_STAGED};
  for (uint32_t term = 1; term <= 4; term++)
    for (size_t j = 0; j < 4; j++) {
      cs_keyring *k = ring_of_every_state();
      cs_term_state from = state_of(k, term);
      assert_int_equal(from, term_in[term]);
      int rc = cs_keyring_transition(k, term, ALL[j], 600);
      if (cs_term_transition_allowed(from, ALL[j])) {
        assert_int_equal(rc, 0);
        assert_int_equal(state_of(k, term), ALL[j]);
      } else {
        assert_int_equal(rc, CS_ETERMSTATE);
        assert_int_equal(state_of(k, term), from); /* unchanged */
      }
      cs_keyring_free(k);
    }
}

static void test_activation(void **state) {
  (void)state;
  cs_keyring *k = ring_of_every_state();
  assert_int_equal(cs_keyring_active(k), 3);
  assert_int_equal(cs_keyring_staged(k), 4);
  assert_int_equal(cs_keyring_newest(k), 4);
  assert_non_null(cs_keyring_key(k, 4)); /* a staged term decrypts */
  assert_null(cs_keyring_key(k, 1));     /* a retired one does not */
  /* Only the active term encrypts: a value is written under 3, not 4. */
  uint8_t *ct, *pt;
  size_t ct_len, pt_len;
  uint32_t t;
  assert_int_equal(cs_barrier_encrypt(k, "kv/a", (const uint8_t *)"x", 1, &ct, &ct_len), 0);
  assert_int_equal(cs_barrier_term_of(ct, ct_len, &t), 0);
  assert_int_equal(t, 3);
  free(ct);
  /* A second staged term, or an immediate rotation, is refused while one is pending. */
  assert_int_equal(cs_keyring_stage(k, 700, &t), CS_ETERMSTATE);
  assert_int_equal(cs_keyring_rotate(k, 700, &t), CS_ETERMSTATE);
  assert_int_equal(cs_keyring_newest(k), 4);
  assert_int_equal(cs_keyring_transition(k, 4, CS_TERM_ACTIVE, 800), 0);
  assert_int_equal(cs_keyring_active(k), 4);
  assert_int_equal(state_of(k, 3), CS_TERM_DECRYPT_ONLY);
  cs_term_info ti;
  assert_int_equal(cs_keyring_term_info(k, 4, &ti), 0);
  assert_int_equal(ti.activation_time, 800);
  assert_int_equal(ti.install_time, 400);
  assert_int_equal(cs_barrier_encrypt(k, "kv/a", (const uint8_t *)"x", 1, &ct, &ct_len), 0);
  assert_int_equal(cs_barrier_term_of(ct, ct_len, &t), 0);
  assert_int_equal(t, 4);
  /* The old active term still decrypts. */
  assert_int_equal(cs_barrier_decrypt(k, "kv/a", ct, ct_len, &pt, &pt_len), 0);
  free(pt);
  free(ct);
  assert_int_equal(cs_keyring_transition(k, 4, CS_TERM_RETIRED, 900), CS_ETERMSTATE);
  assert_non_null(strstr(cs_error_message(CS_ETERMSTATE), "never be retired"));
  assert_int_equal(cs_keyring_transition(k, 9, CS_TERM_RETIRED, 900), CS_ENOTERM);
  cs_keyring_free(k);
}

static void test_encode_every_state(void **state) {
  (void)state;
  cs_keyring *k = ring_of_every_state(), *d;
  uint8_t *buf;
  size_t len;
  assert_int_equal(cs_keyring_encode(k, &buf, &len), 0);
  assert_int_equal(cs_keyring_decode(buf, len, &d), 0);
  /* The retired term is stored without its key. */
  Custos__Keyring *m = custos__keyring__unpack(NULL, len, buf);
  assert_non_null(m);
  assert_int_equal(m->terms[0]->key.len, 0);
  assert_int_equal(m->terms[0]->state, CUSTOS__TERM_STATE__TERM_STATE_RETIRED);
  assert_int_equal(m->terms[0]->retirement_time, 500);
  custos__keyring__free_unpacked(m, NULL);
  cs_wipe(buf, len);
  free(buf);
  assert_int_equal(cs_keyring_count(d), 4);
  for (uint32_t t = 1; t <= 4; t++) {
    cs_term_info a, b;
    assert_int_equal(cs_keyring_term_info(k, t, &a), 0);
    assert_int_equal(cs_keyring_term_info(d, t, &b), 0);
    assert_int_equal(a.state, b.state);
    assert_int_equal(a.install_time, b.install_time);
    assert_int_equal(a.activation_time, b.activation_time);
    assert_int_equal(a.retirement_time, b.retirement_time);
    assert_int_equal(a.encryptions, b.encryptions);
    if (t > 1)
      assert_memory_equal(cs_keyring_key(k, t), cs_keyring_key(d, t), CS_KEY_LEN);
  }
  assert_null(cs_keyring_key(d, 1));
  assert_int_equal(cs_keyring_active(d), 3);
  assert_int_equal(cs_keyring_staged(d), 4);
  cs_keyring *c;
  assert_int_equal(cs_keyring_clone(d, &c), 0);
  assert_int_equal(state_of(c, 1), CS_TERM_RETIRED);
  assert_int_equal(cs_keyring_active(c), 3);
  cs_keyring_free(c);
  cs_keyring_free(d);
  cs_keyring_free(k);
}

/* Packs a keyring message with the given terms. */
static void pack(uint32_t active, Custos__KeyringTerm *terms, size_t n, uint8_t **buf, size_t *len) {
  Custos__KeyringTerm *ptrs[8];
  for (size_t i = 0; i < n; i++)
    ptrs[i] = &terms[i];
  Custos__Keyring r = CUSTOS__KEYRING__INIT;
  r.active_term = active;
  r.n_terms = n;
  r.terms = ptrs;
  *len = custos__keyring__get_packed_size(&r);
  *buf = malloc(*len);
  custos__keyring__pack(&r, *buf);
}

static void test_legacy_keyring(void **state) {
  (void)state;
  uint8_t key[3][CS_KEY_LEN];
  Custos__KeyringTerm t[3];
  for (int i = 0; i < 3; i++) {
    memset(key[i], 'a' + i, CS_KEY_LEN);
    custos__keyring_term__init(&t[i]);
    t[i].term = (uint32_t)i + 1;
    t[i].key.data = key[i];
    t[i].key.len = CS_KEY_LEN;
    t[i].install_time = 1000 * (i + 1);
    t[i].encryptions = 7;
  }
  uint8_t *buf;
  size_t len;
  cs_keyring *k;
  pack(3, t, 3, &buf, &len);
  assert_int_equal(cs_keyring_decode(buf, len, &k), 0);
  free(buf);
  assert_int_equal(cs_keyring_active(k), 3);
  assert_int_equal(state_of(k, 1), CS_TERM_DECRYPT_ONLY);
  assert_int_equal(state_of(k, 2), CS_TERM_DECRYPT_ONLY);
  assert_int_equal(state_of(k, 3), CS_TERM_ACTIVE);
  cs_term_info ti;
  assert_int_equal(cs_keyring_term_info(k, 2, &ti), 0);
  assert_int_equal(ti.activation_time, 2000); /* it activated when installed */
  assert_int_equal(ti.encryptions, 7);
  cs_keyring_free(k);
  /* An old keyring whose active_term is not the last term stays corrupt. */
  pack(2, t, 3, &buf, &len);
  assert_int_equal(cs_keyring_decode(buf, len, &k), CS_ESTORECORRUPT);
  free(buf);
}

static void test_inconsistent_states(void **state) {
  (void)state;
  uint8_t key[CS_KEY_LEN];
  memset(key, 1, sizeof key);
  Custos__KeyringTerm t[3];
  for (int i = 0; i < 3; i++) {
    custos__keyring_term__init(&t[i]);
    t[i].term = (uint32_t)i + 1;
    t[i].key.data = key;
    t[i].key.len = CS_KEY_LEN;
    t[i].state = CUSTOS__TERM_STATE__TERM_STATE_DECRYPT_ONLY;
  }
  struct {
    uint32_t active;
    Custos__TermState s[3];
    size_t keyless; /* 1-based term without a key, 0 none */
    int ok;
  } cases[] = {
      {2, {3, 2, 1}, 0, 1},   /* decrypt-only, active, staged */
      {2, {4, 2, 1}, 1, 1},   /* retired without key */
      {2, {4, 2, 1}, 0, 0},   /* retired WITH a key */
      {2, {3, 2, 1}, 1, 0},   /* a live term without key */
      {2, {3, 2, 2}, 0, 0},   /* two active */
      {3, {3, 1, 2}, 0, 0},   /* staged below the active term */
      {3, {3, 3, 3}, 0, 0},   /* no active */
      {2, {3, 2, 4}, 0, 0},   /* retired above the active term */
      {2, {0, 2, 1}, 0, 0},   /* unset next to set states */
      {2, {9, 2, 1}, 0, 0},   /* unknown state */
      {1, {2, 1, 1}, 0, 0},   /* two staged */
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    for (int i = 0; i < 3; i++) {
      t[i].state = cases[c].s[i];
      t[i].key.len = cases[c].keyless == (size_t)i + 1 ? 0 : CS_KEY_LEN;
    }
    uint8_t *buf;
    size_t len;
    cs_keyring *k = NULL;
    pack(cases[c].active, t, 3, &buf, &len);
    int rc = cs_keyring_decode(buf, len, &k);
    free(buf);
    if (rc != (cases[c].ok ? 0 : CS_ESTORECORRUPT))
      fail_msg("case %zu: rc %d", c, rc);
    cs_keyring_free(k);
  }
}

static void test_retired_read_error(void **state) {
  (void)state;
  cs_keyring *k;
  uint32_t t;
  assert_int_equal(cs_keyring_new(&k), 0);
  assert_int_equal(cs_keyring_rotate(k, 100, &t), 0);
  uint8_t *ct, *pt;
  size_t ct_len, pt_len;
  assert_int_equal(cs_barrier_encrypt(k, "kv/old", (const uint8_t *)"v", 1, &ct, &ct_len), 0);
  assert_int_equal(cs_keyring_rotate(k, 200, &t), 0);
  /* 2026-12-02T07:00:00Z */
  assert_int_equal(cs_keyring_transition(k, 1, CS_TERM_RETIRED, 1796194800), 0);
  assert_int_equal(cs_barrier_decrypt(k, "kv/old", ct, ct_len, &pt, &pt_len), CS_ETERMRETIRED);
  assert_string_equal(cs_error_message(CS_ETERMRETIRED),
                      "term 1 was retired on 2026-12-02T07:00:00Z (path kv/old)");
  /* A term the ring never had is still "no key". */
  ct[3] = 9;
  assert_int_equal(cs_barrier_decrypt(k, "kv/old", ct, ct_len, &pt, &pt_len), CS_ENOTERM);
  free(ct);
  cs_keyring_free(k);
}

/* A standby still holding the term as staged opens what the member that
 * activated it wrote; neither side ever writes under a staged term. */
static void test_staged_decrypts_on_standby(void **state) {
  (void)state;
  cs_keyring *active, *standby;
  uint32_t t;
  assert_int_equal(cs_keyring_new(&active), 0);
  assert_int_equal(cs_keyring_rotate(active, 100, &t), 0);
  assert_int_equal(cs_keyring_stage(active, 200, &t), 0);
  assert_int_equal(cs_keyring_clone(active, &standby), 0);
  assert_int_equal(cs_keyring_transition(active, 2, CS_TERM_ACTIVE, 300), 0);
  uint8_t *ct, *pt;
  size_t ct_len, pt_len;
  uint32_t hdr;
  assert_int_equal(cs_barrier_encrypt(active, "kv/new", (const uint8_t *)"n", 1, &ct, &ct_len), 0);
  assert_int_equal(cs_barrier_term_of(ct, ct_len, &hdr), 0);
  assert_int_equal(hdr, 2);
  assert_int_equal(cs_barrier_decrypt(standby, "kv/new", ct, ct_len, &pt, &pt_len), 0);
  assert_int_equal(pt[0], 'n');
  free(pt);
  free(ct);
  assert_int_equal(cs_barrier_encrypt(standby, "kv/x", (const uint8_t *)"x", 1, &ct, &ct_len), 0);
  assert_int_equal(cs_barrier_term_of(ct, ct_len, &hdr), 0);
  assert_int_equal(hdr, 1); /* the standby's active term, not the staged one */
  free(ct);
  /* The standby can also receive a staged key from elsewhere. */
  cs_keyring *other;
  uint8_t key[CS_KEY_LEN] = {1};
  assert_int_equal(cs_keyring_new(&other), 0);
  assert_int_equal(cs_keyring_stage_key(other, 1, key, 5), CS_ETERMSTATE); /* first term */
  assert_int_equal(cs_keyring_rotate(other, 5, &t), 0);
  assert_int_equal(cs_keyring_stage_key(other, 1, key, 6), CS_ETERMSTATE); /* not above */
  assert_int_equal(cs_keyring_stage_key(other, 2, key, 6), 0);
  assert_memory_equal(cs_keyring_key(other, 2), key, CS_KEY_LEN);
  cs_keyring_free(other);
  cs_keyring_free(standby);
  cs_keyring_free(active);
}

static void test_revived(void **state) {
  (void)state;
  cs_keyring *old, *cur;
  uint32_t terms[4];
  assert_int_equal(cs_keyring_new(&old), 0);
  for (int i = 0; i < 3; i++)
    assert_int_equal(cs_keyring_rotate(old, 100 + i, NULL), 0);
  assert_int_equal(cs_keyring_clone(old, &cur), 0);
  assert_int_equal(cs_keyring_rotate(cur, 200, NULL), 0);
  assert_int_equal(cs_keyring_revived(cur, old, terms, 4), 0);
  assert_int_equal(cs_keyring_transition(cur, 1, CS_TERM_RETIRED, 300), 0);
  assert_int_equal(cs_keyring_transition(cur, 3, CS_TERM_RETIRED, 300), 0);
  assert_int_equal(cs_keyring_revived(cur, old, terms, 4), 2);
  assert_int_equal(terms[0], 1);
  assert_int_equal(terms[1], 3);
  assert_int_equal(cs_keyring_revived(cur, old, terms, 1), 2); /* counted beyond cap */
  assert_int_equal(cs_keyring_revived(cur, cur, terms, 4), 0);
  cs_keyring_free(cur);
  cs_keyring_free(old);
}

static void test_activation_decision(void **state) {
  (void)state;
  size_t lag = 99;
  /* Standalone: at once. */
  assert_int_equal(cs_activation_decide(5, 100, 100, 600, NULL, 0, &lag), CS_ACTIVATION_NOW);
  assert_int_equal(lag, 0);
  cs_member_keys m[3] = {{"b", 1, 5}, {"c", 1, 4}, {"learner", 0, 1}};
  /* A voter lacks it: wait until the delay has run out, then overdue. */
  assert_int_equal(cs_activation_decide(5, 100, 100, 600, m, 3, &lag), CS_ACTIVATION_WAIT);
  assert_int_equal(lag, 1);
  assert_int_equal(cs_activation_decide(5, 100, 699, 600, m, 3, &lag), CS_ACTIVATION_WAIT);
  assert_int_equal(cs_activation_decide(5, 100, 700, 600, m, 3, &lag), CS_ACTIVATION_OVERDUE);
  assert_int_equal(lag, 1);
  /* A clock that went back is no time elapsed. */
  assert_int_equal(cs_activation_decide(5, 100, 50, 0, m, 3, &lag), CS_ACTIVATION_OVERDUE);
  assert_int_equal(cs_activation_decide(5, 100, 50, 1, m, 3, &lag), CS_ACTIVATION_WAIT);
  /* Every voter holds it (the non-voter does not count). */
  m[1].newest_term = 5;
  assert_int_equal(cs_activation_decide(5, 100, 100, 600, m, 3, &lag), CS_ACTIVATION_NOW);
  assert_int_equal(lag, 0);
}

int main(void) {
  if (cs_crypto_init() != 0)
    return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_table),
      cmocka_unit_test(test_every_pair_on_a_ring),
      cmocka_unit_test(test_activation),
      cmocka_unit_test(test_encode_every_state),
      cmocka_unit_test(test_legacy_keyring),
      cmocka_unit_test(test_inconsistent_states),
      cmocka_unit_test(test_retired_read_error),
      cmocka_unit_test(test_staged_decrypts_on_standby),
      cmocka_unit_test(test_revived),
      cmocka_unit_test(test_activation_decision),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
