/* records.h - what every IAM resource module shares: the storage layout
 * (key prefixes, resource kinds), id checks, JSON records in the store, an
 * owning builder for store transactions, create and delete of named
 * records, and list paging. Records are JSON objects; fields whose name
 * starts with '_' are private and never leave the server. Stateless and
 * thread-safe (the store guards itself). */
#ifndef IAM_RECORDS_H
#define IAM_RECORDS_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server.h"
#include "uc/auth.h"
#include "uc/err.h"
#include "uc/store.h"

/* Storage layout. Primary records: */
#define IAM_K_PROJECT "proj/" /* proj/<id> -> project */
#define IAM_K_USER "user/"    /* user/<id> -> user */
#define IAM_K_SA "sa/"        /* sa/<id> -> service account */
#define IAM_K_BINDING "rb/"   /* rb/<id> -> role binding */
#define IAM_K_CRED "ak/"      /* ak/<id> -> credential */
#define IAM_K_KEY "key/"      /* key/<kid> -> signing key */
/* Unique names (value: the owner's id): */
#define IAM_K_PROJECT_NAME "name/proj/" /* name/proj/<name> */
#define IAM_K_USER_NAME "name/user/"    /* name/user/<name> */
#define IAM_K_SA_NAME "name/sa/"        /* name/sa/<project>/<name> */
/* Secondary indexes: */
#define IAM_K_SA_BY_PROJECT "by-project/sa/"     /* .../<project>/<sa id> -> copy of the sa */
#define IAM_K_RB_BY_PROJECT "by-project/rb/"     /* .../<project>/<rb id> -> copy of the binding */
#define IAM_K_RB_BY_PRINCIPAL "by-principal/rb/" /* .../<principal>/<project|system> -> copy */
#define IAM_K_CRED_BY_PRINCIPAL "by-principal/ak/" /* .../<principal>/<ak id> -> the ak id */
/* Generation of a parent: every child create rewrites gen/<parent>, and a
 * parent delete checks it, so a child cannot slip in between the delete's
 * scan for children and its transaction. */
#define IAM_K_GEN "gen/"

#define IAM_SYSTEM_SCOPE "system" /* project slot of system-admin bindings */
#define IAM_KEY_LEN 256           /* every key IAM builds fits */
#define IAM_LIST_DEFAULT 100
#define IAM_LIST_MAX 1000
#define IAM_DESCRIPTION_MAX 1024 /* bytes of a description field */

/* One kind of resource: how its ids look, where its records live and what
 * messages call it. The constants below are the only instances. */
struct iam_kind {
    const char *id_prefix; /* ids are "<id_prefix>-<20 of [a-z0-9]>" */
    const char *key;       /* primary records: key + id */
    const char *name_key;  /* unique names (NULL: names are not unique) */
    const char *noun;      /* "project", "service account", ... */
};
extern const struct iam_kind iam_kind_project, iam_kind_user, iam_kind_sa, iam_kind_binding,
    iam_kind_cred;

/* True when id is "<prefix>-" followed by 20 characters of [a-z0-9]. */
bool iam_id_is(const char *id, const char *prefix);

/* Errors: UC_EINVAL "id must look like <prefix>-<20 lowercase letters/digits>". */
UC_MUSTCHECK int iam_id_check(const char *id, const char *prefix, char err[UC_ERR_LEN]);

/* Wall time in milliseconds from the server's clock. */
int64_t iam_now_ms(const struct iam_server *s);

/* Set "updated_at" (and "created_at" when `created`) on rec to now_ms.
 * Errors: UC_ENOMEM. */
UC_MUSTCHECK int iam_stamp(json_t *rec, int64_t now_ms, bool created);

/* Build "<a><b>" (and more parts) into key (IAM_KEY_LEN bytes).
 * Errors: UC_EINVAL when it does not fit. */
UC_MUSTCHECK int iam_key(char key[IAM_KEY_LEN], const char *a, const char *b, const char *c,
                         char err[UC_ERR_LEN]);

/* Load and parse the record at key. On success *rec is a new reference and
 * *rev (may be NULL) its revision. Errors: UC_ENOENT ("<what> not found"),
 * UC_EINTERNAL (not a JSON object), UC_EIO, UC_EUNAVAIL, UC_ENOMEM. */
UC_MUSTCHECK int iam_record_load(struct uc_store *st, const char *key, const char *what,
                                 json_t **rec, uint64_t *rev, char err[UC_ERR_LEN]);

/* Check id is one of kind k and load its record, as iam_record_load with
 * what = "<noun> <id>". Errors: UC_EINVAL (malformed id), UC_ENOENT
 * ("<noun> <id> not found"), UC_EINTERNAL, UC_EIO, UC_EUNAVAIL, UC_ENOMEM. */
UC_MUSTCHECK int iam_load(struct uc_store *st, const struct iam_kind *k, const char *id,
                          json_t **rec, uint64_t *rev, char err[UC_ERR_LEN]);

/* uc_auth_check_project (c and project borrowed), with its "another
 * project" answer worded "<noun> <id> not found". Errors: UC_ENOENT,
 * UC_EFORBIDDEN. */
UC_MUSTCHECK int iam_check_project(const struct uc_auth_claims *c, const char *project,
                                   enum uc_role need, const char *noun, const char *id,
                                   char err[UC_ERR_LEN]);

/* Parse an item's value as a record. Errors: UC_EINTERNAL, UC_ENOMEM. */
UC_MUSTCHECK int iam_record_parse(const struct uc_store_item *it, json_t **rec,
                                  char err[UC_ERR_LEN]);

/* The public view of rec: a copy without '_' fields, with "revision": rev
 * added unless rev is 0. New reference, or NULL on ENOMEM. */
json_t *iam_record_view(const json_t *rec, uint64_t rev);

/* Current revision of key into *rev. Errors: UC_ENOENT, UC_EIO, UC_EUNAVAIL, UC_ENOMEM. */
UC_MUSTCHECK int iam_revision(struct uc_store *st, const char *key, uint64_t *rev,
                              char err[UC_ERR_LEN]);

/* PATCH's optional "revision": 0 when absent or equal to `current`.
 * Errors: UC_ECONFLICT naming both revisions. */
UC_MUSTCHECK int iam_check_revision(const json_t *body, uint64_t current, char err[UC_ERR_LEN]);

/* An owning list of store operations: keys and values are copied in and
 * freed by iam_ops_clear. Zero-initialise, add, commit, clear. */
struct iam_ops {
    struct uc_store_op *ops;
    size_t n, cap;
};

/* Add an operation. Errors: UC_ENOMEM, UC_E2BIG (over UC_STORE_MAX_TXN_OPS). */
UC_MUSTCHECK int iam_ops_put(struct iam_ops *o, const char *key, const void *val, size_t len,
                             uint64_t expect_rev);
UC_MUSTCHECK int iam_ops_put_json(struct iam_ops *o, const char *key, const json_t *rec,
                                  uint64_t expect_rev);
UC_MUSTCHECK int iam_ops_del(struct iam_ops *o, const char *key, uint64_t expect_rev);
UC_MUSTCHECK int iam_ops_check(struct iam_ops *o, const char *key, uint64_t expect_rev);
void iam_ops_clear(struct iam_ops *o);

/* Add a check that the parent record at `key` is still at `rev`, and a
 * write of its generation gen/<parent_id>, so that a concurrent delete of
 * the parent fails. Errors: UC_EINVAL (key too long), UC_ENOMEM, UC_E2BIG. */
UC_MUSTCHECK int iam_ops_touch_parent(struct iam_ops *o, const char *key, uint64_t rev,
                                      const char *parent_id, char err[UC_ERR_LEN]);

/* Add the deletion of rec (of kind k, with a unique name within `scope`,
 * see iam_create_named) at revision rev, of its name and of its generation,
 * whose revision is read now: a child created after this call changes it
 * and the transaction then fails. On failure o may hold some of the ops.
 * Errors: UC_EINVAL, UC_ENOMEM, UC_E2BIG and the store's. */
UC_MUSTCHECK int iam_ops_del_named(struct uc_store *st, const struct iam_kind *k, const char *scope,
                                   const json_t *rec, uint64_t rev, struct iam_ops *o,
                                   char err[UC_ERR_LEN]);

/* Apply o in one transaction; *rev (may be NULL) gets its revision. When
 * it fails with UC_ECONFLICT and `unique_key` (may be NULL) now exists, the
 * answer is UC_EEXIST with `exists_msg`; other conflicts say the data
 * changed meanwhile. Errors: UC_EEXIST, UC_ECONFLICT, and the store's. */
UC_MUSTCHECK int iam_ops_commit(struct uc_store *st, const struct iam_ops *o,
                                const char *unique_key, const char *exists_msg, uint64_t *rev,
                                char err[UC_ERR_LEN]);

/* Create rec (borrowed; its "id" and "name" fields name it) as a record of
 * kind k: put it at k->key + id, its name at k->name_key + [scope/]name
 * (unique within `scope`, a project id; NULL: unique in IAM) and its
 * generation gen/<id>, all only if absent, in one transaction with what o
 * (may be NULL) already holds (parent checks, index copies). *out (new
 * reference) is the stored record's view. o is cleared in every case.
 * Errors: UC_EEXIST ("<noun> name '<name>' already exists", or "<noun>
 * '<name>' already exists in project <scope>"), UC_ECONFLICT, UC_EINVAL,
 * UC_E2BIG, UC_ENOMEM and the store's. */
UC_MUSTCHECK int iam_create_named(struct uc_store *st, const struct iam_kind *k, const char *scope,
                                  const json_t *rec, struct iam_ops *o, json_t **out,
                                  char err[UC_ERR_LEN]);

/* Write rec (borrowed) back to k->key + id if that is still at *rev; *rev
 * gets the new revision. Errors: UC_ECONFLICT (changed meanwhile),
 * UC_EINVAL, UC_ENOMEM and the store's. */
UC_MUSTCHECK int iam_record_update(struct uc_store *st, const struct iam_kind *k, const char *id,
                                   const json_t *rec, uint64_t *rev, char err[UC_ERR_LEN]);

/* Every item under prefix (all pages); items and n as for uc_store_scan.
 * Errors: UC_E2BIG (more than `max`), and the store's. */
UC_MUSTCHECK int iam_scan_all(struct uc_store *st, const char *prefix, size_t max,
                              struct uc_store_item **items, size_t *n, char err[UC_ERR_LEN]);

/* True when at least one key has this prefix; errors as the store's. */
UC_MUSTCHECK int iam_prefix_used(struct uc_store *st, const char *prefix, bool *used,
                                 char err[UC_ERR_LEN]);

/* Turn one scanned item into the view placed in a list (*view new
 * reference), or set *view NULL to skip it. */
typedef int (*iam_list_map)(void *ctx, const struct uc_store_item *it, json_t **view,
                            char err[UC_ERR_LEN]);

/* Maps: the item is the record itself / the item's value is an id whose
 * record lives at prefix + id (ctx: a struct iam_index_map); missing ones are
 * skipped. */
int iam_map_record(void *ctx, const struct uc_store_item *it, json_t **view, char err[UC_ERR_LEN]);
/* As iam_map_record, without the "revision" field. */
int iam_map_public(void *ctx, const struct uc_store_item *it, json_t **view, char err[UC_ERR_LEN]);
int iam_map_index(void *ctx, const struct uc_store_item *it, json_t **view, char err[UC_ERR_LEN]);
struct iam_index_map {
    struct uc_store *st;
    const char *prefix; /* e.g. IAM_K_CRED */
};

/* A page request: limit 1..IAM_LIST_MAX, token NULL for the first page. */
struct iam_page {
    int limit;
    const char *token; /* borrowed */
};

/* 0 when pg->token is absent or could have been handed out: an id of kind
 * k (k NULL: 1-64 characters of [a-z0-9-]). Errors: UC_EINVAL
 * (IAM_BAD_PAGE_TOKEN). */
#define IAM_BAD_PAGE_TOKEN "page_token is not one this server handed out"
UC_MUSTCHECK int iam_page_check(const struct iam_page *pg, const struct iam_kind *k,
                                char err[UC_ERR_LEN]);

/* One page of the keys under prefix as {"items":[...],"next_page_token":..}
 * (*out new reference). The token is the last key's suffix after prefix:
 * an id of kind `token_kind` (NULL: any key suffix), see iam_page_check.
 * Errors: UC_EINVAL (malformed page_token), and the store's and map's. */
UC_MUSTCHECK int iam_list(struct uc_store *st, const char *prefix,
                          const struct iam_kind *token_kind, const struct iam_page *pg,
                          iam_list_map map, void *mctx, json_t **out, char err[UC_ERR_LEN]);

/* *out = {"items": items} (items stolen, also on failure). Errors: UC_ENOMEM. */
UC_MUSTCHECK int iam_wrap_items(json_t *items, json_t **out);

/* Set obj[name] = value (stolen). Errors: UC_ENOMEM. */
UC_MUSTCHECK int iam_set(json_t *obj, const char *name, json_t *value);

#endif /* IAM_RECORDS_H */
