/* db_cache.c - prepared statements kept by their SQL text, so a batch of
 * 100 INSERTs sharing one text is compiled once, not 100 times per member.
 * The one idea: a statement is authorized when it is prepared, so a cached
 * one carries the verdict (class, DML) reached then, and may be reused only
 * under the same rules: same mode, same "hidden" list (the project
 * restrictions of the request) and the same schema. The cache is emptied
 * when the hidden list differs and after any schema change. */
#include <string.h>

#include "db_internal.h"
#include "uc/alloc.h"

#define FNV_OFFSET 14695981039346656037ull
#define FNV_PRIME 1099511628211ull

struct scache_ent {
    char *sql;
    size_t len;
    uint64_t hash;
    sqlite3_stmt *st;
    struct authz az; /* the verdict at prepare; tables and hidden unset */
    struct scache_ent *next;
};

static uint64_t hash_text(const char *s, size_t n)
{
    uint64_t h = FNV_OFFSET;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * FNV_PRIME;
    return h;
}

void flaredb_cache_clear(struct stmt_cache *sc)
{
    for (size_t i = 0; i < SCACHE_SLOTS; i++) {
        struct scache_ent *e = sc->slot[i], *next;
        for (; e; e = next) {
            next = e->next;
            sqlite3_finalize(e->st);
            uc_free(e->sql);
            uc_free(e);
        }
        sc->slot[i] = NULL;
    }
    sc->last = NULL;
    sc->n = 0;
    json_decref(sc->hidden);
    sc->hidden = NULL;
}

int flaredb_cache_rules(struct stmt_cache *sc, const json_t *hidden, char *err)
{
    size_t n = json_array_size(hidden);
    if (n == 0 && !sc->hidden)
        return 0;
    if (n && sc->hidden && json_equal(sc->hidden, hidden))
        return 0;
    /* statements authorized under other restrictions must be authorized again */
    flaredb_cache_clear(sc);
    if (n && !(sc->hidden = json_deep_copy(hidden)))
        return uc_err_set(err, UC_ENOMEM, "out of memory");
    return 0;
}

sqlite3_stmt *flaredb_cache_find(struct stmt_cache *sc, enum az_mode mode, const char *sql,
                                 size_t len, struct authz *az)
{
    struct scache_ent *e = sc->last;
    /* a batch repeats one text: compare with the last hit before hashing */
    if (e && e->len == len && e->az.mode == mode && memcmp(e->sql, sql, len) == 0) {
        *az = e->az;
        return e->st;
    }
    uint64_t h = hash_text(sql, len);
    for (e = sc->slot[h % SCACHE_SLOTS]; e; e = e->next) {
        if (e->hash == h && e->len == len && e->az.mode == mode && memcmp(e->sql, sql, len) == 0) {
            *az = e->az;
            sc->last = e;
            return e->st;
        }
    }
    return NULL;
}

bool flaredb_cache_add(struct stmt_cache *sc, const char *sql, size_t len, sqlite3_stmt *st,
                       const struct authz *az)
{
    if (sc->n >= SCACHE_MAX) /* rarely reached: a new working set replaces the old */
        flaredb_cache_rules_keep(sc);
    struct scache_ent *e = uc_calloc(1, sizeof(*e));
    char *copy = e ? uc_malloc(len + 1) : NULL;
    if (!copy) {
        uc_free(e);
        return false; /* not cached: the caller finalizes it as usual */
    }
    memcpy(copy, sql, len);
    copy[len] = '\0';
    *e = (struct scache_ent){.sql = copy, .len = len, .hash = hash_text(sql, len), .st = st};
    e->az = *az;
    e->az.tables = NULL;
    e->az.hidden = NULL;
    size_t slot = e->hash % SCACHE_SLOTS;
    e->next = sc->slot[slot];
    sc->slot[slot] = e;
    sc->n++;
    return true;
}

void flaredb_cache_rules_keep(struct stmt_cache *sc)
{
    json_t *hidden = sc->hidden;
    sc->hidden = NULL;
    flaredb_cache_clear(sc);
    sc->hidden = hidden;
}
