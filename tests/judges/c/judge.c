/*
 * The C client judge: ZooKeeper's own C library (Debian libzookeeper-mt) drives one
 * session through create/get/set/delete, an exists watch that fires, an ephemeral, a
 * sequential node, a container, a TTL node and two multis, printing one normalised line
 * per step (tests/judges/c/test_c_client.py compares them with ZooKeeper 3.8.0's golden
 * output).  Normalised here: zxids lose their epoch ("e+0x5"), the session id is "self",
 * times are left out.
 *
 *   judge HOST:PORT
 *
 * Exit status 0 when every step ran (whatever it returned), 1 when the session could not
 * be set up or a wait ran out.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zookeeper/zookeeper.h>

#define WAIT_SECONDS 15

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int connected = 0;
static int watch_events = 0;
static int last_event_type = 0;
static char last_event_path[256];
static int64_t session_id = 0;

static const char *type_name(int type) {
    if (type == ZOO_CREATED_EVENT) return "NodeCreated";
    if (type == ZOO_DELETED_EVENT) return "NodeDeleted";
    if (type == ZOO_CHANGED_EVENT) return "NodeDataChanged";
    if (type == ZOO_CHILD_EVENT) return "NodeChildrenChanged";
    if (type == ZOO_SESSION_EVENT) return "Session";
    if (type == ZOO_NOTWATCHING_EVENT) return "NotWatching";
    return "?";
}

static void session_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx) {
    (void)zh; (void)path; (void)ctx;
    if (type == ZOO_SESSION_EVENT) {
        pthread_mutex_lock(&lock);
        connected = (state == ZOO_CONNECTED_STATE);
        pthread_cond_broadcast(&changed);
        pthread_mutex_unlock(&lock);
    }
}

static void node_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx) {
    (void)zh; (void)state; (void)ctx;
    pthread_mutex_lock(&lock);
    watch_events++;
    last_event_type = type;
    snprintf(last_event_path, sizeof last_event_path, "%s", path ? path : "");
    pthread_cond_broadcast(&changed);
    pthread_mutex_unlock(&lock);
}

/* Wait (with a deadline, never a sleep) until *flag reaches at least want. */
static int wait_for(int *flag, int want) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += WAIT_SECONDS;
    int ok = 1;
    pthread_mutex_lock(&lock);
    while (*flag < want) {
        if (pthread_cond_timedwait(&changed, &lock, &deadline) == ETIMEDOUT) {
            ok = *flag >= want;
            break;
        }
    }
    pthread_mutex_unlock(&lock);
    return ok;
}

static const char *rc_name(int rc) {
    switch (rc) {
    case ZOK: return "OK";
    case ZNONODE: return "NONODE";
    case ZNODEEXISTS: return "NODEEXISTS";
    case ZBADVERSION: return "BADVERSION";
    case ZNOTEMPTY: return "NOTEMPTY";
    case ZNOCHILDRENFOREPHEMERALS: return "NOCHILDRENFOREPHEMERALS";
    case ZRUNTIMEINCONSISTENCY: return "RUNTIMEINCONSISTENCY";
    case ZNOAUTH: return "NOAUTH";
    case ZBADARGUMENTS: return "BADARGUMENTS";
    case ZUNIMPLEMENTED: return "UNIMPLEMENTED";
    case ZINVALIDACL: return "INVALIDACL";
    default: return zerror(rc);
    }
}

static void print_stat(const struct Stat *s) {
    const char *owner = s->ephemeralOwner == 0 ? "0"
        : s->ephemeralOwner == session_id ? "self" : "other";
    printf(" czxid=e+0x%" PRIx64 " mzxid=e+0x%" PRIx64 " pzxid=e+0x%" PRIx64
           " version=%d cversion=%d aversion=%d owner=%s dataLength=%d numChildren=%d",
           (uint64_t)s->czxid & 0xffffffffu, (uint64_t)s->mzxid & 0xffffffffu,
           (uint64_t)s->pzxid & 0xffffffffu, s->version, s->cversion, s->aversion, owner,
           s->dataLength, s->numChildren);
}

static void step_create(zhandle_t *zh, const char *path, const char *data, int mode,
                        int64_t ttl) {
    char created[256] = "";
    struct Stat stat;
    memset(&stat, 0, sizeof stat);
    int len = data ? (int)strlen(data) : -1;
    int rc = ttl > 0
        ? zoo_create2_ttl(zh, path, data, len, &ZOO_OPEN_ACL_UNSAFE, mode, ttl, created,
                          sizeof created, &stat)
        : zoo_create2(zh, path, data, len, &ZOO_OPEN_ACL_UNSAFE, mode, created,
                      sizeof created, &stat);
    printf("create %s mode=%d -> %s", path, mode, rc_name(rc));
    if (rc == ZOK) {
        printf(" %s", created);
        print_stat(&stat);
    }
    printf("\n");
}

static void step_get(zhandle_t *zh, const char *path) {
    char buf[256];
    int len = sizeof buf - 1;
    struct Stat stat;
    int rc = zoo_get(zh, path, 0, buf, &len, &stat);
    printf("get %s -> %s", path, rc_name(rc));
    if (rc == ZOK) {
        buf[len < 0 ? 0 : len] = '\0';
        printf(" data='%s'", buf);
        print_stat(&stat);
    }
    printf("\n");
}

static void step_set(zhandle_t *zh, const char *path, const char *data, int version) {
    struct Stat stat;
    int rc = zoo_set2(zh, path, data, (int)strlen(data), version, &stat);
    printf("set %s version=%d -> %s", path, version, rc_name(rc));
    if (rc == ZOK) print_stat(&stat);
    printf("\n");
}

static void step_delete(zhandle_t *zh, const char *path, int version) {
    printf("delete %s version=%d -> %s\n", path, version, rc_name(zoo_delete(zh, path, version)));
}

static void step_children(zhandle_t *zh, const char *path) {
    struct String_vector kids;
    struct Stat stat;
    int rc = zoo_get_children2(zh, path, 0, &kids, &stat);
    printf("children %s -> %s", path, rc_name(rc));
    if (rc == ZOK) {
        /* The server sends children in no defined order: sort them. */
        for (int i = 0; i < kids.count; i++)
            for (int j = i + 1; j < kids.count; j++)
                if (strcmp(kids.data[i], kids.data[j]) > 0) {
                    char *t = kids.data[i]; kids.data[i] = kids.data[j]; kids.data[j] = t;
                }
        printf(" [");
        for (int i = 0; i < kids.count; i++) printf("%s%s", i ? "," : "", kids.data[i]);
        printf("]");
        print_stat(&stat);
        deallocate_String_vector(&kids);
    }
    printf("\n");
}

static void print_results(const char *what, int rc, int count, zoo_op_result_t *res) {
    printf("multi %s -> %s [", what, rc_name(rc));
    for (int i = 0; i < count; i++) printf("%s%s", i ? "," : "", rc_name(res[i].err));
    printf("]\n");
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s HOST:PORT\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
    zhandle_t *zh = zookeeper_init(argv[1], session_watcher, 10000, 0, NULL, 0);
    if (!zh || !wait_for(&connected, 1)) {
        printf("connect -> FAILED\n");
        return 1;
    }
    session_id = zoo_client_id(zh)->client_id;
    printf("connect -> OK\n");

    step_create(zh, "/cjudge", "root", 0, 0);
    step_create(zh, "/cjudge/a", "alpha", 0, 0);
    step_create(zh, "/cjudge/a", "again", 0, 0);
    step_get(zh, "/cjudge/a");
    step_set(zh, "/cjudge/a", "beta", 0);
    step_set(zh, "/cjudge/a", "stale", 0);
    step_get(zh, "/cjudge/a");
    step_get(zh, "/cjudge/missing");

    /* An exists watch on a missing node, fired by its creation. */
    struct Stat stat;
    int rc = zoo_wexists(zh, "/cjudge/w", node_watcher, NULL, &stat);
    printf("wexists /cjudge/w -> %s\n", rc_name(rc));
    step_create(zh, "/cjudge/w", "w", 0, 0);
    if (!wait_for(&watch_events, 1)) {
        printf("watch /cjudge/w -> TIMEOUT\n");
        return 1;
    }
    printf("watch fired -> %s %s\n", type_name(last_event_type), last_event_path);
    /* And an exists watch on a present node, fired by a data change. */
    rc = zoo_wexists(zh, "/cjudge/w", node_watcher, NULL, &stat);
    printf("wexists /cjudge/w -> %s\n", rc_name(rc));
    step_set(zh, "/cjudge/w", "w2", -1);
    if (!wait_for(&watch_events, 2)) {
        printf("watch /cjudge/w -> TIMEOUT\n");
        return 1;
    }
    printf("watch fired -> %s %s\n", type_name(last_event_type), last_event_path);

    step_create(zh, "/cjudge/eph", "e", ZOO_EPHEMERAL, 0);
    step_create(zh, "/cjudge/eph/child", "x", 0, 0);
    step_create(zh, "/cjudge/seq-", "s", ZOO_SEQUENCE, 0);
    step_create(zh, "/cjudge/seq-", "s", ZOO_EPHEMERAL | ZOO_SEQUENCE, 0);
    step_create(zh, "/cjudge/box", NULL, ZOO_CONTAINER, 0);
    step_create(zh, "/cjudge/box/in", "i", 0, 0);
    step_create(zh, "/cjudge/ttl", "t", ZOO_PERSISTENT_WITH_TTL, 60000);
    step_get(zh, "/cjudge/eph");
    step_get(zh, "/cjudge/box");
    step_get(zh, "/cjudge/ttl");

    /* A multi whose third op fails: nothing applies, the results say why. */
    zoo_op_t ops[3];
    zoo_op_result_t res[3];
    char p0[64];
    zoo_create_op_init(&ops[0], "/cjudge/m1", "m", 1, &ZOO_OPEN_ACL_UNSAFE, 0, p0, sizeof p0);
    zoo_set_op_init(&ops[1], "/cjudge/a", "multi", 5, -1, NULL);
    zoo_check_op_init(&ops[2], "/cjudge/a", 42);
    rc = zoo_multi(zh, 3, ops, res);
    print_results("create,set,check(bad)", rc, 3, res);
    step_get(zh, "/cjudge/a");
    step_get(zh, "/cjudge/m1");
    /* And one that succeeds. */
    struct Stat st1;
    zoo_create_op_init(&ops[0], "/cjudge/m1", "m", 1, &ZOO_OPEN_ACL_UNSAFE, 0, p0, sizeof p0);
    zoo_set_op_init(&ops[1], "/cjudge/a", "multi", 5, 1, &st1);
    zoo_delete_op_init(&ops[2], "/cjudge/w", -1);
    rc = zoo_multi(zh, 3, ops, res);
    print_results("create,set,delete", rc, 3, res);
    step_get(zh, "/cjudge/a");
    step_get(zh, "/cjudge/m1");
    step_children(zh, "/cjudge");

    step_delete(zh, "/cjudge", -1);
    step_delete(zh, "/cjudge/a", 7);
    step_delete(zh, "/cjudge/a", 2);
    step_delete(zh, "/cjudge/a", -1);
    step_children(zh, "/cjudge");

    rc = zookeeper_close(zh);
    printf("close -> %s\n", rc_name(rc));
    return 0;
}
