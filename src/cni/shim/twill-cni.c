/*
 * twill-cni: the executable a container runtime runs as the `twill` CNI plugin ("thick plugin").
 *
 * Node needs ~75 ms just to start, once per pod operation, so this tiny program forwards the call
 * (its CNI_* environment and stdin) over a unix socket to the running agent twilld, which does the
 * work with warm netlink sockets, and replays the answer (stdout + exit code). When the agent is
 * not reachable it runs the full Node plugin (dist/src/cni/main.js) instead, which does the same
 * work in-process on the same on-disk state: ADD works and DEL succeeds with the agent down.
 *
 * Protocol (src/cni/agent-socket.ts is the server side):
 *   request:  "TWILL-CNI/1\n", then each CNI_* variable as "NAME=VALUE\0", then "\0",
 *             then the raw stdin bytes until EOF (half-close)
 *   response: the exit code in ASCII decimal + "\n", then the stdout bytes until the server closes
 *
 * Nothing but the result goes to stdout; diagnostics go to stderr. Built by scripts/build-shim.mjs.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* SOCK_CLOEXEC under -std=c99 */
#endif
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef TWILL_NODE_MAIN
#error "define TWILL_NODE_MAIN as the absolute path of dist/src/cni/main.js (scripts/build-shim.mjs does)"
#endif

#define DEFAULT_SOCKET "/run/twill/cni.sock"
#define MAX_STDIN (16u << 20)    /* as the agent's default maxRequestBytes (which counts the env too) */
#define MAX_RESPONSE (64u << 20) /* a CNI result is a few KiB; this only bounds a broken agent */

extern char **environ;

struct buf {
    char *data;
    size_t len, cap;
};

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

/* A CNI error result, so the runtime can tell its user why the call failed. */
static void cni_error_exit(const char *msg) {
    fprintf(stderr, "twill-cni: %s\n", msg);
    printf("{\"cniVersion\":\"1.1.0\",\"code\":100,\"msg\":\"twill-cni: %s\"}\n", msg);
    fflush(stdout);
    exit(1);
}

static const char *env_nonempty(const char *name) {
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* Replaces this process with `node <main.js> argv[1..]`. Returns only if nothing could be run. */
static void exec_fallback(int argc, char **argv) {
    const char *main_js = env_nonempty("TWILL_CNI_NODE_MAIN");
    const char *node = env_nonempty("TWILL_NODE");
    char **args = calloc((size_t)argc + 2, sizeof *args);
    if (!args) die_oom();
    args[1] = (char *)(main_js ? main_js : TWILL_NODE_MAIN);
    for (int i = 1; i < argc; i++) args[i + 1] = argv[i];
    signal(SIGPIPE, SIG_DFL); /* an ignored signal stays ignored across exec */
    if (node) {
        args[0] = (char *)node;
        if (strchr(node, '/'))
            execv(node, args);
        else
            execvp(node, args);
    } else {
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
    cni_error_exit("cannot start the Node plugin (is node on the PATH?)");
}

/* The connection broke before an answer: run the plugin locally on the stdin already read. */
static void fallback_with_stdin(int argc, char **argv, const struct buf *in) {
    int p[2];
    if (pipe(p) < 0) cni_error_exit("pipe failed");
    pid_t pid = fork();
    if (pid < 0) cni_error_exit("fork failed");
    if (pid == 0) {
        if (dup2(p[0], STDIN_FILENO) < 0) _exit(1);
        close(p[0]);
        close(p[1]);
        exec_fallback(argc, argv);
    }
    close(p[0]);
    /* EPIPE (the plugin exited without reading it all) is not our error: its status tells. */
    (void)write_all(p[1], in->data ? in->data : "", in->len);
    close(p[1]);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) cni_error_exit("waitpid failed");
    exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

/* Parses "<0..255>\n" at the start of r. Returns the header length, 0 if incomplete, -1 if bad. */
static int parse_header(const struct buf *r, int *code) {
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

int main(int argc, char **argv) {
    /* --help, --version and anything else on the command line is for the Node plugin. */
    if (argc > 1) exec_fallback(argc, argv);
    signal(SIGPIPE, SIG_IGN); /* a closed socket or stdout must be an error code, not a death */

    const char *path = env_nonempty("TWILL_CNI_SOCKET");
    if (!path) path = DEFAULT_SOCKET;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path) {
        fprintf(stderr, "twill-cni: socket path too long: %s; running the plugin locally\n", path);
        exec_fallback(argc, argv);
    }
    memcpy(addr.sun_path, path, strlen(path) + 1);
    /* Not connected: stdin is still unread, so the Node plugin can simply take this process's
     * place. An agent that is down (no socket, or nobody listening) is routine: no message. */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        if (errno != ENOENT && errno != ECONNREFUSED)
            fprintf(stderr, "twill-cni: cannot connect to %s: %s; running the plugin locally\n", path, strerror(errno));
        exec_fallback(argc, argv);
    }

    struct buf in = {0}, req = {0}, resp = {0};
    char chunk[65536];
    for (;;) {
        ssize_t n = read(STDIN_FILENO, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) cni_error_exit("cannot read stdin");
        if (n == 0) break;
        if (in.len + (size_t)n > MAX_STDIN) cni_error_exit("stdin (network config) exceeds 16 MiB");
        buf_append(&in, chunk, (size_t)n);
    }

    buf_append(&req, "TWILL-CNI/1\n", 12);
    for (char **e = environ; *e; e++)
        if (strncmp(*e, "CNI_", 4) == 0 && strchr(*e, '=')) buf_append(&req, *e, strlen(*e) + 1);
    buf_append(&req, "", 1); /* the empty entry that ends the list */

    if (write_all(fd, req.data, req.len) < 0 || write_all(fd, in.data ? in.data : "", in.len) < 0 ||
        shutdown(fd, SHUT_WR) < 0) {
        fprintf(stderr, "twill-cni: sending to twilld failed (%s); running the plugin locally\n", strerror(errno));
        close(fd);
        fallback_with_stdin(argc, argv, &in);
    }

    int code = 0, hlen = 0;
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n > 0 && resp.len + (size_t)n > MAX_RESPONSE) cni_error_exit("twilld's answer exceeds 64 MiB");
        if (n > 0) buf_append(&resp, chunk, (size_t)n);
        if (hlen == 0) hlen = parse_header(&resp, &code);
        if (hlen < 0 || (hlen == 0 && n <= 0)) {
            /* Nothing usable came back: the agent died or is not speaking this protocol. */
            fprintf(stderr, "twill-cni: twilld gave no answer (%s); running the plugin locally\n",
                    hlen < 0 ? "malformed header" : n < 0 ? strerror(errno) : "connection closed");
            close(fd);
            fallback_with_stdin(argc, argv, &in);
        }
        /* After a header the agent has acted on the call, so a lost tail is an error, not a retry. */
        if (n < 0) cni_error_exit("connection to twilld lost while reading the result");
        if (n == 0) break;
    }
    close(fd);
    if (write_all(STDOUT_FILENO, resp.data + hlen, resp.len - (size_t)hlen) < 0) {
        fprintf(stderr, "twill-cni: cannot write the result to stdout: %s\n", strerror(errno));
        return 1;
    }
    return code;
}
