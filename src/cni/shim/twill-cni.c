/*
 * twill-cni: the executable a container runtime runs as the `twill` CNI plugin ("thick plugin").
 *
 * Node needs ~75 ms just to start, once per pod operation, so this small program forwards the call
 * (its CNI_* environment and stdin) over a unix socket to the running agent twilld, which does the
 * work with warm netlink sockets, and replays the answer (stdout + exit code). When the agent is
 * not reachable it runs the Node plugin itself (dist/cni/twill-plugin.cjs, which runs
 * src/cni/main.ts bundled into one file, with V8's code cache, so that it starts fast) instead,
 * which does the same work in-process on the same on-disk state: ADD works and DEL succeeds with
 * the agent down.
 *
 * Protocol (src/cni/agent-socket.ts is the server side):
 *   request:  "TWILL-CNI/1\n", then each CNI_* variable as "NAME=VALUE\0", then "\0",
 *             then the raw stdin bytes until EOF (half-close)
 *   response: the exit code in ASCII decimal + "\n", then the stdout bytes until the server closes;
 *             or "-\n": the agent declined the call without starting it (it is stopping)
 *
 * When the plugin runs locally, and when it must not:
 *   - connect() failed (no socket, nobody listening, the path too long, the agent's backlog full
 *     for CONNECT_TIMEOUT_S): the agent has not seen the call, so the Node plugin runs it.
 *   - sending the request failed: the agent starts a call only once it has the whole request
 *     and its end (the half-close), so it has not started this one either: the plugin runs it.
 *   - the agent answered "-": the same.
 *   - anything else after the request was sent (the connection closed or reset without an
 *     answer, a malformed answer, no answer within the agent timeout): the agent may have started
 *     the call, and running it again here would work on half of it (an ADD half done twice). So
 *     the shim reports a CNI error (code 11, try again later) and leaves the rest to the runtime:
 *     its DEL, or a repeated ADD, which the plugin makes idempotent (src/cni/commands/add-repeat.ts).
 *
 * Deadlines: nothing here waits without a limit (a runtime waits for the plugin as long as it
 * takes). The agent answers every call within its --cni-timeout (at most 120 s) plus the undo
 * and rollback of a call that ran out of time (src/cni/timeouts.ts), so AGENT_TIMEOUT_S (180 s;
 * TWILL_CNI_AGENT_TIMEOUT, in seconds) without an answer means the agent is wedged. The Node plugin
 * gets TWILL_CNI_TIMEOUT (default 60 s), which it enforces itself, undoing a late call in up to
 * twice its undo window (min(5 s, the timeout)); if it has not exited a third window after that
 * (stuck in a system call), it is killed, an ADD is rolled back by running the plugin's DEL with
 * the same input, and the answer is a CNI error.
 *
 * Which node runs the plugin: $TWILL_NODE; else the one installed with the plugin
 * (<release>/bin/node, TWILL_BUNDLED_NODE: a node host usually has no Node.js of its own); else
 * the node that built the shim (TWILL_NODE_BIN); else `node` on the PATH.
 *
 * Nothing but the result goes to stdout; diagnostics go to stderr. Built by scripts/build-shim.mjs.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* SOCK_CLOEXEC, memfd_create, ppoll under -std=gnu11 */
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef TWILL_NODE_MAIN
#error "define TWILL_NODE_MAIN as the absolute path of dist/cni/twill-plugin.cjs (scripts/build-shim.mjs does)"
#endif

#define DEFAULT_SOCKET "/run/twill/cni.sock"
#define MAX_STDIN (16u << 20)    /* as the agent's default maxRequestBytes (which counts the env too) */
#define MAX_RESPONSE (64u << 20) /* a CNI result is a few KiB; this only bounds a broken agent */
#define CONNECT_TIMEOUT_S 10     /* connect() and sending, when the agent does not accept */
#define AGENT_TIMEOUT_S 180      /* > the agent's longest call: 120 s + 2 x 5 s undo + 5 s + a rollback */
#define CALL_TIMEOUT_S 60        /* the Node plugin's own deadline (TWILL_CNI_TIMEOUT) */
#define UNDO_S 5                 /* ROLLBACK_MS of src/cni/timeouts.ts */
#define ROLLBACK_TIMEOUT_S 20    /* the DEL that rolls back a killed ADD, Node's start included */
#define MAX_TIMEOUT_S 600

extern char **environ;

struct buf {
    char *data;
    size_t len, cap;
};

/* The config's cniVersion, for the error JSON (the runtime reads errors in its own version). */
static char cni_version[16] = "1.1.0";

static void die_oom(void) {
    fputs("twill-cni: out of memory\n", stderr);
    exit(1);
}

static void buf_append(struct buf *b, const void *p, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        char *data = realloc(b->data, cap);
        if (!data) die_oom();
        b->data = data;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

/* Writes all of p, across partial writes and EINTR. Returns 0, or -1 with errno set. */
static int write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* A CNI error result (code 11 "try again later", or 100), so the runtime can tell its user why. */
static void cni_error_exit(int code, const char *msg) {
    fprintf(stderr, "twill-cni: %s\n", msg);
    printf("{\"cniVersion\":\"%s\",\"code\":%d,\"msg\":\"twill-cni: %s\"}\n", cni_version, code, msg);
    fflush(stdout);
    exit(1);
}

static const char *env_nonempty(const char *name) {
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* Whole seconds from the environment (1..MAX_TIMEOUT_S), else `fallback`. */
static int env_seconds(const char *name, int fallback) {
    const char *v = env_nonempty(name);
    if (!v) return fallback;
    char *end;
    long s = strtol(v, &end, 10);
    if (*end != '\0' || s < 1 || s > MAX_TIMEOUT_S) {
        fprintf(stderr, "twill-cni: %s=%s is not 1..%d whole seconds; using %d\n", name, v, MAX_TIMEOUT_S, fallback);
        return fallback;
    }
    return (int)s;
}

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Picks "cniVersion":"x.y.z" out of the config (digits and dots only: it goes into JSON as is). */
static void find_cni_version(const struct buf *in) {
    static const char key[] = "\"cniVersion\"";
    const char *end = in->data + in->len;
    const char *p = in->data ? memmem(in->data, in->len, key, sizeof key - 1) : NULL;
    if (!p) return;
    p += sizeof key - 1;
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ':')) p++;
    if (p >= end || *p++ != '"') return;
    size_t n = 0;
    while (p + n < end && n < sizeof cni_version - 1 && ((p[n] >= '0' && p[n] <= '9') || p[n] == '.')) n++;
    if (n == 0 || p + n >= end || p[n] != '"') return;
    memcpy(cni_version, p, n);
    cni_version[n] = '\0';
}

/* Replaces this process with `node <plugin loader> argv[1..]`. Returns only if nothing could be run. */
static void exec_node(int argc, char **argv) {
    const char *plugin_js = env_nonempty("TWILL_CNI_NODE_MAIN");
    const char *node = env_nonempty("TWILL_NODE");
    char **args = calloc((size_t)argc + 2, sizeof *args);
    if (!args) die_oom();
    args[1] = (char *)(plugin_js ? plugin_js : TWILL_NODE_MAIN);
    for (int i = 1; i < argc; i++) args[i + 1] = argv[i];
    signal(SIGPIPE, SIG_DFL); /* an ignored signal stays ignored across exec */
    /* Node 20 reads and parses this certificate file as it starts (50 ms measured, more than the
     * rest of its start-up); the plugin makes no TLS connection, so it never needs it. */
    unsetenv("NODE_EXTRA_CA_CERTS");
    if (node) {
        args[0] = (char *)node;
        if (strchr(node, '/'))
            execv(node, args);
        else
            execvp(node, args);
    } else {
#ifdef TWILL_BUNDLED_NODE
        /* Installed with the plugin (scripts/install-cni.sh): present on a node without Node.js. */
        args[0] = (char *)TWILL_BUNDLED_NODE;
        execv(TWILL_BUNDLED_NODE, args);
#endif
#ifdef TWILL_NODE_BIN
        /* The node that built the shim; it may be absent where the shim is installed (the image
         * builds it, a node host runs it), so PATH is tried next. */
        args[0] = (char *)TWILL_NODE_BIN;
        execv(TWILL_NODE_BIN, args);
#endif
        args[0] = "node";
        execvp("node", args);
    }
    fprintf(stderr, "twill-cni: cannot run node %s: %s\n", args[1], strerror(errno));
}

/*
 * Runs the Node plugin with `command` as CNI_COMMAND (NULL: as given) on the stdin in `memfd`,
 * collecting its stdout into `out`. Returns its exit status, or -1 when it did not end by
 * `deadline` (then it and its process group are killed).
 */
static int run_node(int argc, char **argv, int memfd, const char *command, long long deadline, struct buf *out) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) cni_error_exit(100, "pipe failed");
    if (lseek(memfd, 0, SEEK_SET) < 0) cni_error_exit(100, "cannot rewind the saved stdin");
    pid_t pid = fork();
    if (pid < 0) cni_error_exit(100, "fork failed");
    if (pid == 0) {
        setpgid(0, 0); /* its own group: killing it takes whatever it started (nft) too */
        if (dup2(memfd, STDIN_FILENO) < 0 || dup2(p[1], STDOUT_FILENO) < 0) _exit(1);
        if (command && setenv("CNI_COMMAND", command, 1) < 0) _exit(1);
        exec_node(argc, argv);
        printf("{\"cniVersion\":\"%s\",\"code\":100,\"msg\":\"twill-cni: cannot start the Node plugin (no node next to the plugin, nor on the PATH)\"}\n", cni_version);
        fflush(stdout);
        _exit(1);
    }
    setpgid(pid, pid);
    close(p[1]);
    char chunk[65536];
    int timed_out = 0;
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0) {
            timed_out = 1;
            break;
        }
        struct pollfd pfd = {.fd = p[0], .events = POLLIN};
        int r = poll(&pfd, 1, left > 1000000 ? 1000000 : (int)left);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) cni_error_exit(100, "poll failed");
        if (r == 0) continue;
        ssize_t n = read(p[0], chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break; /* EOF: it exited (or closed its stdout) */
        if (out->len + (size_t)n > MAX_RESPONSE) cni_error_exit(100, "the Node plugin's output exceeds 64 MiB");
        buf_append(out, chunk, (size_t)n);
    }
    close(p[0]);
    if (timed_out) kill(-pid, SIGKILL);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) cni_error_exit(100, "waitpid failed");
    if (timed_out) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The agent has not seen this call: the Node plugin runs it here, under its deadline. */
static void fallback(int argc, char **argv, const struct buf *in) {
    int memfd = memfd_create("twill-cni-stdin", MFD_CLOEXEC);
    if (memfd < 0 || write_all(memfd, in->data ? in->data : "", in->len) < 0) cni_error_exit(100, "cannot save stdin for the Node plugin");
    int timeout = env_seconds("TWILL_CNI_TIMEOUT", CALL_TIMEOUT_S);
    struct buf out = {0};
    int undo = timeout < UNDO_S ? timeout : UNDO_S;
    int status = run_node(argc, argv, memfd, NULL, now_ms() + (long long)(timeout + 3 * undo) * 1000, &out);
    if (status < 0) {
        const char *command = getenv("CNI_COMMAND");
        char msg[256];
        int rolled_back = -1;
        if (command && strcmp(command, "ADD") == 0) {
            struct buf ignored = {0};
            rolled_back = run_node(argc, argv, memfd, "DEL", now_ms() + ROLLBACK_TIMEOUT_S * 1000LL, &ignored) == 0;
        }
        snprintf(msg, sizeof msg, "the in-process plugin did not finish %s within %d s (TWILL_CNI_TIMEOUT) and was stopped%s",
                 command ? command : "the call", timeout,
                 rolled_back < 0 ? "" : rolled_back ? "; what it had done is undone" : "; undoing it failed: the runtime's DEL will");
        cni_error_exit(11, msg);
    }
    if (write_all(STDOUT_FILENO, out.data ? out.data : "", out.len) < 0) {
        fprintf(stderr, "twill-cni: cannot write the result to stdout: %s\n", strerror(errno));
        exit(1);
    }
    exit(status);
}

/* Parses "<0..255>\n" (or the decline "-\n") at the start of r. Returns the header length, 0 if incomplete, -1 if bad. */
static int parse_header(const struct buf *r, int *code) {
    if (r->len >= 1 && r->data[0] == '-') {
        if (r->len == 1) return 0;
        if (r->data[1] != '\n') return -1;
        *code = -1;
        return 2;
    }
    int v = 0;
    for (size_t i = 0; i < r->len && i < 4; i++) {
        char c = r->data[i];
        if (c == '\n') {
            if (i == 0 || v > 255) return -1;
            *code = v;
            return (int)i + 1;
        }
        if (c < '0' || c > '9') return -1;
        v = v * 10 + (c - '0');
    }
    return r->len >= 4 ? -1 : 0;
}

static void read_stdin(struct buf *in) {
    char chunk[65536];
    for (;;) {
        ssize_t n = read(STDIN_FILENO, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) cni_error_exit(100, "cannot read stdin");
        if (n == 0) break;
        if (in->len + (size_t)n > MAX_STDIN) cni_error_exit(100, "stdin (network config) exceeds 16 MiB");
        buf_append(in, chunk, (size_t)n);
    }
}

/* A connected socket to the agent, or -1 (errno set) when it cannot be reached. */
static int connect_agent(const char *path) {
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path) {
        fprintf(stderr, "twill-cni: socket path too long: %s; running the plugin locally\n", path);
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(addr.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    /* Bounds connect() (a full backlog) and sending (an agent that does not read). */
    struct timeval tv = {.tv_sec = CONNECT_TIMEOUT_S};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int main(int argc, char **argv) {
    /* --help, --version and anything else on the command line is for the Node plugin. */
    if (argc > 1) {
        exec_node(argc, argv);
        cni_error_exit(100, "cannot start the Node plugin (no node next to the plugin, nor on the PATH)");
    }
    signal(SIGPIPE, SIG_IGN); /* a closed socket or stdout must be an error code, not a death */

    struct buf in = {0}, req = {0}, resp = {0};
    read_stdin(&in);
    find_cni_version(&in);

    const char *path = env_nonempty("TWILL_CNI_SOCKET");
    if (!path) path = DEFAULT_SOCKET;
    /* An agent that is down (no socket, or nobody listening) is routine: no message. */
    int fd = connect_agent(path);
    if (fd < 0) {
        if (errno != ENOENT && errno != ECONNREFUSED && errno != ENAMETOOLONG)
            fprintf(stderr, "twill-cni: cannot connect to %s: %s; running the plugin locally\n", path, strerror(errno));
        fallback(argc, argv, &in);
    }

    buf_append(&req, "TWILL-CNI/1\n", 12);
    for (char **e = environ; *e; e++)
        if (strncmp(*e, "CNI_", 4) == 0 && strchr(*e, '=')) buf_append(&req, *e, strlen(*e) + 1);
    buf_append(&req, "", 1); /* the empty entry that ends the list */

    if (write_all(fd, req.data, req.len) < 0 || write_all(fd, in.data ? in.data : "", in.len) < 0 ||
        shutdown(fd, SHUT_WR) < 0) {
        fprintf(stderr, "twill-cni: sending to twilld failed (%s); running the plugin locally\n", strerror(errno));
        close(fd);
        fallback(argc, argv, &in);
    }

    int agent_timeout = env_seconds("TWILL_CNI_AGENT_TIMEOUT", AGENT_TIMEOUT_S);
    long long deadline = now_ms() + (long long)agent_timeout * 1000;
    char chunk[65536];
    int code = 0, hlen = 0;
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0) {
            char msg[160];
            snprintf(msg, sizeof msg, "twilld did not answer within %d s; the call may still be running there, so it is not run again here", agent_timeout);
            cni_error_exit(11, msg);
        }
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int r = poll(&pfd, 1, left > 1000000 ? 1000000 : (int)left);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) cni_error_exit(100, "poll failed");
        if (r == 0) continue;
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n > 0 && resp.len + (size_t)n > MAX_RESPONSE) cni_error_exit(100, "twilld's answer exceeds 64 MiB");
        if (n > 0) buf_append(&resp, chunk, (size_t)n);
        if (hlen == 0) hlen = parse_header(&resp, &code);
        if (hlen > 0 && code < 0) {
            close(fd);
            fallback(argc, argv, &in); /* declined unstarted */
        }
        if (hlen < 0) cni_error_exit(11, "twilld's answer is malformed; the call may have run there, so it is not run again here");
        if (hlen == 0 && n <= 0) {
            char msg[200];
            snprintf(msg, sizeof msg, "twilld closed the connection without answering (%s: did it stop?); the call may have started there, so it is not run again here",
                     n < 0 ? strerror(errno) : "end of stream");
            cni_error_exit(11, msg);
        }
        /* After a header the agent has acted on the call, so a lost tail is an error, not a retry. */
        if (n < 0) cni_error_exit(11, "connection to twilld lost while reading the result");
        if (n == 0) break;
    }
    close(fd);
    if (write_all(STDOUT_FILENO, resp.data + hlen, resp.len - (size_t)hlen) < 0) {
        fprintf(stderr, "twill-cni: cannot write the result to stdout: %s\n", strerror(errno));
        return 1;
    }
    return code;
}
