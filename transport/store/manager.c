/* The manager: the store's lock for its life, one runner per enabled
 * plugin, the run files, and the events. One mutex serialises the
 * operations (enable, disable, remove, restore, shutdown, close); enable
 * and restore wait for starts without it. The runners call
 * back without it, so an operation may stop a runner (and wait for its
 * thread) while holding it. */
#include <goplugin/store_manager.h>

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <goplugin/reattach.h>

#include "transport/base/errf.h"
#include "transport/store/manager_orphans.h"
#include "transport/store/manager_runner.h"

/* The store's crash-test hook (transport/store/disk.c, declared in the
 * store's internal.h): SIGKILL at the GP_STORE_CRASH_AT-th point of the
 * process, counting the store's points and ours alike. */
void gp__store_crash_point(const char *where);

#define DEFAULT_START_TIMEOUT_MS 60000
/* How long restore and enable wait for a first start beyond its timeout. */
#define FIRST_START_SLACK_MS 5000

typedef struct entry {
    struct gp_manager *m;
    char *name;
    gp_store_record *rec;
    gp_store_launch *launch;
    gp_client_config cc; /* the launch config, plus our logger and timeouts */
    char *run_file;
    char *out_file, *err_file; /* live restore: ROOT/logs/NAME.stdout, .stderr */
    const char **env;          /* the launch's env + m->mark (pointers borrowed) */
    gp__runner *runner;
    struct entry *next;
    /* Guarded by m->mu. An enable waiting for the first start, without
     * the lock, holds the entry: a stop meanwhile unlinks it, and the last
     * waiter frees it. */
    int waiters;
    bool unlinked;
} entry;

struct gp_manager {
    gp_store *store;
    char *root;
    char *mark;     /* "GP_MANAGER_ROOT=<resolved root>", in every launch's env */
    char *self;     /* "GP_MANAGER_SELF=<pid>.<ns>": this manager's, ditto */
    char *blob_dir; /* <resolved root>/blobs/sha256 */
    bool live_restore;
    long long log_rotate_bytes; /* < 0: never */
    gp_backoff_config backoff;
    int start_timeout_ms, kill_grace_ms;
    int health_interval_ms, health_timeout_ms;
    gp_logger logger;
    gp_manager_callback on_event;
    void *ctx;

    pthread_mutex_t mu; /* one operation at a time; guards the fields below */
    entry *running;     /* a runner each */
    bool restored;
    bool closing; /* gp_manager_shutdown ran: nothing starts any more */
};

const char *gp_manager_event_name(gp_manager_event_kind kind)
{
    switch (kind) {
    case GP_MANAGER_INSTALL:
        return "install";
    case GP_MANAGER_ENABLE:
        return "enable";
    case GP_MANAGER_DISABLE:
        return "disable";
    case GP_MANAGER_REMOVE:
        return "remove";
    case GP_MANAGER_START:
        return "start";
    case GP_MANAGER_EXIT:
        return "exit";
    case GP_MANAGER_RESTART:
        return "restart";
    }
    return "unknown";
}

static void emit(gp_manager *m, gp_manager_event_kind kind, const char *name, pid_t pid,
                 bool adopted, const char *reason, int64_t delay_ms)
{
    if (!m->on_event)
        return;
    gp_manager_event ev = {.kind = kind,
                           .name = name,
                           .pid = pid,
                           .adopted = adopted,
                           .reason = reason ? reason : "",
                           .delay_ms = delay_ms};
    m->on_event(&ev, m->ctx);
}

static void mlog(gp_manager *m, gp_log_level lv, const char *plugin, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void mlog(gp_manager *m, gp_log_level lv, const char *plugin, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    gp_log_kv kv = {.key = "plugin", .value = plugin ? plugin : ""};
    gp_logf(&m->logger, lv, "manager", &kv, plugin ? 1 : 0, "%s", msg);
}

/* The client's lines (the plugin's stderr and the client's own words) go
 * to the manager's logger under the plugin's name. */
static void tagged_log(void *ctx, gp_log_level level, const char *name, const char *msg,
                       const gp_log_kv *kv, size_t nkv)
{
    (void)name; /* the blob's base name: a digest, which tells nobody anything */
    entry *e = ctx;
    gp_log_fn fn = e->m->logger.fn ? e->m->logger.fn : gp_log_text_stderr;
    fn(e->m->logger.ctx, level, e->name, msg, kv, nkv);
}

static void on_runner(const gp__runner_event *ev, void *ctx)
{
    entry *e = ctx;
    gp_manager *m = e->m;
    switch (ev->kind) {
    case GP__RUNNER_START:
        mlog(m, GP_LOG_INFO, e->name, "%s pid %d", ev->adopted ? "adopted" : "started",
             (int)ev->pid);
        emit(m, GP_MANAGER_START, e->name, ev->pid, ev->adopted, NULL, 0);
        break;
    case GP__RUNNER_EXIT:
        mlog(m, ev->code ? GP_LOG_ERROR : GP_LOG_INFO, e->name, "%s%s", ev->reason,
             ev->code == GP_ECHECKSUM ? " (not restarted: the blob changed)" : "");
        emit(m, GP_MANAGER_EXIT, e->name, ev->pid, false, ev->reason, 0);
        break;
    case GP__RUNNER_RESTART:
        mlog(m, GP_LOG_INFO, e->name, "restarting in %lld ms", (long long)ev->delay_ms);
        emit(m, GP_MANAGER_RESTART, e->name, 0, false, NULL, ev->delay_ms);
        break;
    }
}

size_t gp_manager_run_file(const char *root, const char *name, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s/run/%s.json", root, name);
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

static void entry_free(entry *e)
{
    if (!e)
        return;
    gp__runner_free(e->runner);
    gp_store_launch_free(e->launch);
    gp_store_record_free(e->rec);
    free(e->run_file);
    free(e->out_file);
    free(e->err_file);
    free(e->env);
    free(e->name);
    free(e);
}

static entry *find(gp_manager *m, const char *name, entry ***link)
{
    for (entry **p = &m->running; *p; p = &(*p)->next)
        if (strcmp((*p)->name, name) == 0) {
            if (link)
                *link = p;
            return *p;
        }
    return NULL;
}

/* A runner for rec (caller holds mu). On success it is in m->running. */
static gp_err run(gp_manager *m, const gp_store_record *rec, bool adopt, entry **out, gp_status *st)
{
    entry *e = calloc(1, sizeof *e);
    char path[4096];
    if (!e)
        return gp__status_setf(st, GP_ENOMEM, "manager: out of memory");
    e->m = m;
    e->name = strdup(rec->name);
    e->rec = gp_store_record_copy(rec);
    if (!e->name || !e->rec || !gp_manager_run_file(m->root, rec->name, path, sizeof path) ||
        !(e->run_file = strdup(path))) {
        entry_free(e);
        return gp__status_setf(st, GP_ENOMEM, "manager: out of memory");
    }
    gp_err rc = gp_store_launch_new(m->store, e->rec, &e->launch, st);
    if (rc) {
        entry_free(e);
        return rc;
    }
    e->cc = *gp_store_launch_config(e->launch);
    /* The mark that finds this launch again if we die before publishing it
     * (manager_orphans.c). */
    size_t nenv = 0;
    while (e->cc.env && e->cc.env[nenv])
        nenv++;
    if (!(e->env = calloc(nenv + 3, sizeof *e->env))) {
        entry_free(e);
        return gp__status_setf(st, GP_ENOMEM, "manager: out of memory");
    }
    for (size_t i = 0; i < nenv; i++)
        e->env[i] = e->cc.env[i];
    e->env[nenv] = m->mark;
    e->env[nenv + 1] = m->self;
    e->cc.env = e->env;
    e->cc.logger = (gp_logger){.fn = tagged_log, .ctx = e, .level = m->logger.level};
    e->cc.start_timeout_ms = m->start_timeout_ms;
    e->cc.kill_grace_ms = m->kill_grace_ms;
    if (m->live_restore) {
        /* A plugin that outlives this manager must not write into pipes
         * nobody reads (EPIPE; a Go plugin dies of SIGPIPE): its output
         * goes to files, which the client follows while we run. */
        char op[4096], ep[4096];
        snprintf(op, sizeof op, "%s/logs/%s.stdout", m->root, rec->name);
        snprintf(ep, sizeof ep, "%s/logs/%s.stderr", m->root, rec->name);
        if (!(e->out_file = strdup(op)) || !(e->err_file = strdup(ep))) {
            entry_free(e);
            return gp__status_setf(st, GP_ENOMEM, "manager: out of memory");
        }
        e->cc.stdout_file = e->out_file;
        e->cc.stderr_file = e->err_file;
    }
    gp__runner_spec spec = {
        .client = &e->cc,
        .run_file = e->run_file,
        .adopt = adopt,
        .live_restore = m->live_restore,
        .restart = rec->restart == GP_STORE_RESTART_ALWAYS,
        .allow_tcp = gp_store_record_has_privilege(rec, "tcp"),
        .log_rotate_bytes = m->log_rotate_bytes,
        .health_interval_ms = m->health_interval_ms,
        .health_timeout_ms = m->health_timeout_ms,
        .backoff = m->backoff,
        .on_event = on_runner,
        .ctx = e,
        .crash_point = gp__store_crash_point,
    };
    rc = gp__runner_start(&spec, &e->runner, st);
    if (rc) {
        entry_free(e);
        return rc;
    }
    e->next = m->running;
    m->running = e;
    *out = e;
    return GP_OK;
}

/* Stop and forget name's runner, if any (caller holds mu). */
static void stop(gp_manager *m, const char *name)
{
    entry **link;
    entry *e = find(m, name, &link);
    if (!e)
        return;
    *link = e->next;
    gp__runner_stop(e->runner, false);
    if (e->waiters > 0)
        e->unlinked = true;
    else
        entry_free(e);
}

static void on_store_problem(void *ctx, const char *file, const char *msg)
{
    gp_manager *m = ctx;
    mlog(m, GP_LOG_WARN, NULL, "%s: %s", file, msg);
}

gp_err gp_manager_open(const gp_manager_config *cfg, gp_manager **out, gp_status *st)
{
    gp__status_clear(st);
    if (!out)
        return gp__status_setf(st, GP_EINVAL, "gp_manager_open: out is NULL");
    *out = NULL;
    if (!cfg || !cfg->root || !cfg->root[0])
        return gp__status_setf(st, GP_EINVAL, "manager: root: expected a directory, got none");
    gp_backoff b;
    gp_status bst;
    if (gp_backoff_init(&b, cfg->backoff, &bst))
        return gp__status_setf(st, GP_EINVAL, "manager: backoff: %s", bst.msg);
    if (cfg->start_timeout_ms < 0 || cfg->kill_grace_ms < 0 || cfg->health_timeout_ms < 0)
        return gp__status_setf(st, GP_EINVAL, "manager: timeouts: expected >= 0");
    gp_manager *m = calloc(1, sizeof *m);
    if (!m || !(m->root = strdup(cfg->root))) {
        free(m);
        return gp__status_setf(st, GP_ENOMEM, "manager: out of memory");
    }
    m->live_restore = cfg->live_restore;
    m->log_rotate_bytes = cfg->log_rotate_bytes == 0 ? 16LL << 20 : cfg->log_rotate_bytes;
    m->backoff = b.cfg;
    m->start_timeout_ms = cfg->start_timeout_ms ? cfg->start_timeout_ms : DEFAULT_START_TIMEOUT_MS;
    m->kill_grace_ms = cfg->kill_grace_ms;
    m->health_interval_ms = cfg->health_interval_ms;
    m->health_timeout_ms = cfg->health_timeout_ms;
    m->logger = cfg->logger;
    m->on_event = cfg->on_event;
    m->ctx = cfg->ctx;
    pthread_mutex_init(&m->mu, NULL);
    gp_store_open_opts o = {
        .root = cfg->root, .lock = true, .on_problem = on_store_problem, .ctx = m};
    gp_err rc = gp_store_open(&o, &m->store, st);
    for (int i = 0; rc == GP_OK && i < 2; i++) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%s", m->root, i == 0 ? "run" : "logs");
        if (mkdir(dir, 0700) != 0 && errno != EEXIST)
            rc = gp__status_setf(st, GP_ESYS, "manager: mkdir %s: %s", dir, strerror(errno));
    }
    char real[PATH_MAX];
    if (rc == GP_OK && !realpath(m->root, real))
        rc = gp__status_setf(st, GP_ESYS, "manager: %s: %s", m->root, strerror(errno));
    /* The pid and the clock: unique among the managers of this root (a
     * reused pid comes with a later time). */
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    /* A failed asprintf leaves its pointer unspecified: reset that one. */
    if (rc == GP_OK && asprintf(&m->mark, "%s=%s", GP_MANAGER_ROOT_ENV, real) < 0)
        m->mark = NULL;
    if (rc == GP_OK && m->mark &&
        asprintf(&m->self, "%s=%ld.%lld", GP_MANAGER_SELF_ENV, (long)getpid(),
                 (long long)now.tv_sec * 1000000000LL + now.tv_nsec) < 0)
        m->self = NULL;
    if (rc == GP_OK && m->self && asprintf(&m->blob_dir, "%s/blobs/sha256", real) < 0)
        m->blob_dir = NULL;
    if (rc == GP_OK && !m->blob_dir)
        rc = gp__status_setf(st, GP_ENOMEM, "manager: out of memory");
    if (rc) {
        gp_store_close(m->store);
        pthread_mutex_destroy(&m->mu);
        free(m->mark);
        free(m->self);
        free(m->blob_dir);
        free(m->root);
        free(m);
        return rc;
    }
    *out = m;
    return GP_OK;
}

/* A plugin published in ROOT/run whose record is not enabled (disabled or
 * removed while no manager ran, with the plugin left running by a live
 * restore): stop it through its run file. The pid and start-time check of
 * the reattach keeps a reused pid safe. */
static void stop_unwanted(gp_manager *m, const char *path, const char *name)
{
    gp_reattach_config rc;
    gp_status st = {0};
    gp_err e = gp_reattach_file_read(path, &rc, &st);
    if (e) {
        mlog(m, GP_LOG_WARN, name, "%s: %s; removed", path, st.msg);
        unlink(path);
        return;
    }
    gp_client_config cfg = {
        .reattach = &rc,
        .allowed_protocols = rc.protocol == GP_PROTO_NONE ? GP_PROTO_NETRPC : rc.protocol,
        .start_timeout_ms = 5000,
        .kill_grace_ms = m->kill_grace_ms,
        .logger = m->logger,
    };
    gp_client *c = NULL;
    gp_conn *conn;
    e = gp_client_new(&cfg, &c, &st);
    pid_t pid = rc.pid;
    gp_reattach_config_clear(&rc);
    if (e == GP_OK)
        e = gp_client_connect(c, &conn, &st);
    if (e == GP_OK) {
        gp_client_kill(c);
        mlog(m, GP_LOG_INFO, name, "stopped pid %d: the plugin is not enabled", (int)pid);
    } else {
        mlog(m, GP_LOG_INFO, name, "stale run file %s: %s; removed", path, st.msg);
    }
    gp_client_free(c);
    unlink(path);
}

static void sweep_run_dir(gp_manager *m, gp_store_record **recs)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/run", m->root);
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t n = strlen(de->d_name);
        if (n <= 5 || strcmp(de->d_name + n - 5, ".json") != 0 || de->d_name[0] == '.')
            continue;
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(n - 5), de->d_name);
        bool enabled = false;
        for (size_t i = 0; recs[i]; i++)
            if (recs[i]->enabled && strcmp(recs[i]->name, name) == 0)
                enabled = true;
        if (enabled)
            continue;
        char path[4096 + 256];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        stop_unwanted(m, path, name);
    }
    closedir(d);
}

static void report_unpublished(void *ctx, pid_t pid)
{
    mlog(ctx, GP_LOG_WARN, NULL,
         "stopping pid %d: a plugin an earlier manager launched and never published", (int)pid);
}

/* After sweep_run_dir: what run files remain name plugins to adopt; any
 * other process launched by a manager of this root is stopped. A name
 * this manager already runs (an enable before restore) does not count:
 * its run file may still name the process an earlier manager left, which
 * the new launch replaces (ours are spared by their GP_MANAGER_SELF). */
static void sweep_unpublished(gp_manager *m)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/run", m->root);
    pid_t pids[1024];
    size_t n = 0;
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) && n < sizeof pids / sizeof pids[0]) {
        size_t len = strlen(de->d_name);
        if (len <= 5 || strcmp(de->d_name + len - 5, ".json") != 0 || de->d_name[0] == '.')
            continue;
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)(len - 5), de->d_name);
        if (find(m, name, NULL))
            continue;
        char path[4096 + 256];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        gp_reattach_config rc;
        if (gp_reattach_file_read(path, &rc, NULL) == GP_OK) {
            if (rc.pid > 0)
                pids[n++] = rc.pid;
            gp_reattach_config_clear(&rc);
        }
    }
    if (d)
        closedir(d);
    /* Not our own launches: a restart under way (of a plugin enabled
     * before this restore) has no run file yet. */
    gp__manager_stop_orphans(m->blob_dir, m->mark, m->self, pids, n,
                             m->kill_grace_ms ? m->kill_grace_ms : 2000, report_unpublished, m);
}

static int first_wait_ms(gp_manager *m)
{
    return m->start_timeout_ms + m->kill_grace_ms + FIRST_START_SLACK_MS;
}

gp_err gp_manager_restore(gp_manager *m, gp_status *st)
{
    gp__status_clear(st);
    if (!m)
        return gp__status_setf(st, GP_EINVAL, "gp_manager_restore: NULL manager");
    pthread_mutex_lock(&m->mu);
    if (m->restored || m->closing) {
        pthread_mutex_unlock(&m->mu);
        return gp__status_setf(st, GP_ESTATE, "manager: %s",
                               m->closing ? "shutting down" : "already restored");
    }
    m->restored = true;
    gp_store_record **recs = NULL;
    size_t n = 0;
    gp_err rc = gp_store_list(m->store, &recs, &n, st);
    if (rc) {
        pthread_mutex_unlock(&m->mu);
        return rc;
    }
    sweep_run_dir(m, recs);
    sweep_unpublished(m);
    for (size_t i = 0; i < n; i++) {
        /* Skipped too: one an enable before this restore already runs. */
        if (!recs[i]->enabled || find(m, recs[i]->name, NULL))
            continue;
        entry *e;
        gp_status rst;
        if (run(m, recs[i], true, &e, &rst) != GP_OK)
            mlog(m, GP_LOG_ERROR, recs[i]->name, "cannot restore: %s", rst.msg);
    }
    gp_store_record_list_free(recs);
    /* Launches run in parallel; wait for each first attempt, without the
     * lock (as an enable does): a shutdown, or a disable of one of them,
     * is not held up by a plugin that never answers. */
    size_t nw = 0;
    for (entry *e = m->running; e; e = e->next)
        nw++;
    entry **w = calloc(nw ? nw : 1, sizeof *w);
    if (!w) { /* no room to hold them: wait under the lock */
        for (entry *e = m->running; e; e = e->next)
            (void)gp__runner_wait_first(e->runner, first_wait_ms(m), NULL);
        pthread_mutex_unlock(&m->mu);
        return GP_OK;
    }
    size_t i = 0;
    for (entry *e = m->running; e; e = e->next, i++) {
        w[i] = e;
        e->waiters++;
    }
    pthread_mutex_unlock(&m->mu);
    for (i = 0; i < nw; i++)
        (void)gp__runner_wait_first(w[i]->runner, first_wait_ms(m), NULL);
    pthread_mutex_lock(&m->mu);
    for (i = 0; i < nw; i++)
        if (--w[i]->waiters == 0 && w[i]->unlinked)
            entry_free(w[i]);
    pthread_mutex_unlock(&m->mu);
    free(w);
    return GP_OK;
}

gp_err gp_manager_enable(gp_manager *m, const char *name, gp_status *st)
{
    gp__status_clear(st);
    if (!m || !name)
        return gp__status_setf(st, GP_EINVAL, "gp_manager_enable: NULL argument");
    pthread_mutex_lock(&m->mu);
    if (m->closing) {
        pthread_mutex_unlock(&m->mu);
        return gp__status_setf(st, GP_ESTATE, "manager: shutting down; plugin %s not enabled",
                               name);
    }
    gp_store_record *rec = NULL;
    gp_err rc = gp_store_get(m->store, name, &rec, st);
    if (rc == GP_OK && rec->enabled)
        rc = gp__status_setf(st, GP_ESTATE, "plugin %s is already enabled", rec->name);
    if (rc == GP_OK)
        rc = gp_store_enable(m->store, name, st);
    if (rc) {
        gp_store_record_free(rec);
        pthread_mutex_unlock(&m->mu);
        return rc;
    }
    rec->enabled = true;
    gp__store_crash_point("manager: enabled, not yet launched");
    emit(m, GP_MANAGER_ENABLE, rec->name, 0, false, NULL, 0);
    stop(m, rec->name); /* a runner left over (a failed restore) */
    entry *e = NULL;
    rc = run(m, rec, false, &e, st);
    bool ours = true;
    if (rc == GP_OK) {
        /* The wait (up to the start timeout) without the lock: a disable
         * of this plugin, and every command on the others, go on. Also
         * before restore: it skips a name that has a runner, and its
         * sweep leaves this manager's own launches alone (GP_MANAGER_SELF),
         * so it takes this launch for no orphan. */
        e->waiters++;
        pthread_mutex_unlock(&m->mu);
        rc = gp__runner_wait_first(e->runner, first_wait_ms(m), st);
        pthread_mutex_lock(&m->mu);
        e->waiters--;
        ours = !e->unlinked;
        if (!ours && e->waiters == 0)
            entry_free(e);
    }
    if (rc && !ours) {
        /* A disable or rm stopped it meanwhile: the record is theirs. */
        gp__status_clear(st);
        rc = gp__status_setf(st, GP_ESTATE, "plugin %s was disabled or removed while it started",
                             rec->name);
    } else if (rc && m->closing && e && gp__runner_first_cut(e->runner)) {
        /* Cut short by the shutdown, not failed: the record stays
         * enabled, so the next manager starts it. */
        gp__status_clear(st);
        rc = gp__status_setf(st, GP_ESTATE,
                             "manager: shutting down while plugin %s started; it stays enabled "
                             "and starts with the next manager",
                             rec->name);
    } else if (rc) {
        /* Back to disabled: an enabled plugin that cannot start would be
         * retried by every manager, for nothing. */
        gp_status keep = {0};
        if (st)
            keep = *st;
        stop(m, rec->name);
        if (gp_store_disable(m->store, rec->name, NULL) == GP_OK)
            emit(m, GP_MANAGER_DISABLE, rec->name, 0, false, NULL, 0);
        if (st)
            *st = keep;
    }
    gp_store_record_free(rec);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

gp_err gp_manager_disable(gp_manager *m, const char *name, gp_status *st)
{
    gp__status_clear(st);
    if (!m || !name)
        return gp__status_setf(st, GP_EINVAL, "gp_manager_disable: NULL argument");
    pthread_mutex_lock(&m->mu);
    if (m->closing) { /* its plugin is stopped, or left running for the next manager */
        pthread_mutex_unlock(&m->mu);
        return gp__status_setf(st, GP_ESTATE, "manager: shutting down; plugin %s left as it is",
                               name);
    }
    gp_store_record *rec = NULL;
    gp_err rc = gp_store_get(m->store, name, &rec, st);
    if (rc == GP_OK && !rec->enabled)
        rc = gp__status_setf(st, GP_ESTATE, "plugin %s is not enabled", rec->name);
    if (rc == GP_OK) {
        /* The process first: a crash after it leaves an enabled record,
         * which the next manager starts again; the other order could leave
         * a disabled plugin running with nobody to stop it. */
        stop(m, rec->name);
        gp__store_crash_point("manager: stopped, not yet disabled");
        rc = gp_store_disable(m->store, rec->name, st);
        if (rc == GP_OK)
            emit(m, GP_MANAGER_DISABLE, rec->name, 0, false, NULL, 0);
    }
    gp_store_record_free(rec);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

gp_err gp_manager_remove(gp_manager *m, const char *name, bool force, gp_status *st)
{
    gp__status_clear(st);
    if (!m || !name)
        return gp__status_setf(st, GP_EINVAL, "gp_manager_remove: NULL argument");
    pthread_mutex_lock(&m->mu);
    if (m->closing) { /* its plugin is stopped, or left running for the next manager */
        pthread_mutex_unlock(&m->mu);
        return gp__status_setf(st, GP_ESTATE, "manager: shutting down; plugin %s left as it is",
                               name);
    }
    gp_store_record *rec = NULL;
    gp_err rc = gp_store_get(m->store, name, &rec, st);
    if (rc == GP_OK && rec->enabled && !force)
        rc = gp__status_setf(st, GP_ESTATE,
                             "plugin %s is enabled: disable it first, or remove with force",
                             rec->name);
    if (rc == GP_OK) {
        stop(m, rec->name);
        rc = gp_store_remove(m->store, rec->name, force, st);
        if (rc == GP_OK)
            emit(m, GP_MANAGER_REMOVE, rec->name, 0, false, NULL, 0);
    }
    gp_store_record_free(rec);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

gp_err gp_manager_install(gp_manager *m, const gp_store_install_opts *o, gp_store_record **out,
                          gp_status *st)
{
    gp__status_clear(st);
    if (out)
        *out = NULL;
    if (!m || !o)
        return gp__status_setf(st, GP_EINVAL, "gp_manager_install: NULL argument");
    gp_store_record *rec = NULL;
    gp_err rc = gp_store_install(m->store, o, &rec, st);
    if (rc)
        return rc;
    emit(m, GP_MANAGER_INSTALL, rec->name, 0, false, NULL, 0);
    if (out)
        *out = rec;
    else
        gp_store_record_free(rec);
    return GP_OK;
}

gp_err gp_manager_installed(gp_manager *m, const char *ref, gp_status *st)
{
    gp__status_clear(st);
    if (!m || !ref)
        return gp__status_setf(st, GP_EINVAL, "gp_manager_installed: NULL argument");
    gp_store_record *rec = NULL;
    gp_err rc = gp_store_get(m->store, ref, &rec, st);
    if (rc)
        return rc;
    emit(m, GP_MANAGER_INSTALL, rec->name, 0, false, NULL, 0);
    gp_store_record_free(rec);
    return GP_OK;
}

gp_store *gp_manager_store(gp_manager *m)
{
    return m ? m->store : NULL;
}

pid_t gp_manager_pid(gp_manager *m, const char *name)
{
    if (!m || !name)
        return 0;
    pthread_mutex_lock(&m->mu);
    entry *e = find(m, name, NULL);
    pid_t pid = e ? gp__runner_pid(e->runner) : 0;
    pthread_mutex_unlock(&m->mu);
    return pid;
}

/* Each runner's stop waits for its plugin's grace period: ask them all
 * first, so the waits overlap. */
static void *stop_one(void *arg)
{
    entry *e = arg;
    gp__runner_stop(e->runner, e->m->live_restore);
    return NULL;
}

/* Every runner stopped (with live restore: left running), in parallel: a
 * plugin's graceful stop may take its grace period. Under m->mu. */
static void stop_all(gp_manager *m)
{
    size_t n = 0;
    for (entry *e = m->running; e; e = e->next)
        n++;
    pthread_t *t = calloc(n ? n : 1, sizeof *t);
    bool *made = calloc(n ? n : 1, sizeof *made);
    size_t i = 0;
    for (entry *e = m->running; e; e = e->next, i++) {
        bool ok = t && made && pthread_create(&t[i], NULL, stop_one, e) == 0;
        if (made)
            made[i] = ok;
        if (!ok)
            stop_one(e); /* no thread: one after the other */
    }
    for (i = 0; i < n; i++)
        if (made && made[i])
            pthread_join(t[i], NULL);
    free(t);
    free(made);
}

void gp_manager_shutdown(gp_manager *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    if (!m->closing) {
        m->closing = true;
        stop_all(m);
    }
    pthread_mutex_unlock(&m->mu);
}

void gp_manager_close(gp_manager *m)
{
    if (!m)
        return;
    gp_manager_shutdown(m);
    pthread_mutex_lock(&m->mu);
    while (m->running) {
        entry *e = m->running;
        m->running = e->next;
        entry_free(e); /* its runner has stopped: free does not stop it again */
    }
    pthread_mutex_unlock(&m->mu);
    gp_store_close(m->store);
    pthread_mutex_destroy(&m->mu);
    free(m->mark);
    free(m->self);
    free(m->blob_dir);
    free(m->root);
    free(m);
}
