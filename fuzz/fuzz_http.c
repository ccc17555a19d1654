/* fuzz_http.c - the function runtime's HTTP handling (runtime/runtime.h)
 * against raw bytes from the network.
 *
 * The runtime is started once, in this process, on a free loopback port with
 * a trivial handler (so the fuzzer exercises parsing, routing, auth, body
 * limits and replies, not a step). Each input is sent as-is on a fresh
 * connection, the write side is shut down, and the answer is read (see
 * fz_ReadAnswer) and the connection reset. Properties: the process never
 * crashes or leaks; whatever the server sends is an HTTP/1.x response; after
 * every input GET /healthz on a new connection still answers 200 (the input
 * did not wedge or exhaust the server). Throughput is far below the in-memory harnesses (a TCP round
 * trip per input, and a short quiet wait after keep-alive answers). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <cJSON.h>

#include "fuzz_util.h"
#include "runtime/runtime.h"

#define FZ_TOKEN "fuzz-token"
/* Upper bound on any wait (sending, the health probe): generous, because
 * under ASan on a loaded 2-core machine an answer can take a while. */
#define FZ_DEADLINE_MS 5000
/* How long to wait for the first answer byte to a complete request head,
 * and to one that is still incomplete; then how long a silence after some
 * answer bytes means "that was all" (more pipelined answers may follow). */
#define FZ_ANSWER_MS 200
#define FZ_PARTIAL_MS 10
#define FZ_QUIET_MS 20

static int g_port;

/* Echoes something about the body; "fail": n makes it fail with status n so
 * the error-to-HTTP mapping is exercised too. */
static spStatus fz_Handler(const rt_request *req, cJSON *res, void *ctx)
{
    (void)ctx;
    const cJSON *fail = cJSON_GetObjectItemCaseSensitive(req->body, "fail");
    if (cJSON_IsNumber(fail) && fail->valuedouble >= 1 && fail->valuedouble <= SP_ERR_INTERNAL)
        return sp_Error((spStatus)(int)fail->valuedouble, "failing as asked");
    cJSON_AddNumberToObject(res, "keys", cJSON_GetArraySize(req->body));
    if (req->ce_id)
        cJSON_AddStringToObject(res, "ce_id", req->ce_id);
    return SP_OK;
}

static int g_ready_calls;
static spStatus fz_Ready(void *ctx)
{
    (void)ctx;
    /* Alternate so both /readyz answers are reachable. */
    return __atomic_add_fetch(&g_ready_calls, 1, __ATOMIC_RELAXED) % 2
               ? SP_OK
               : sp_Error(SP_ERR_UNAVAILABLE, "fuzz dependency down");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    static const rt_function fn = {"fuzz", fz_Handler, fz_Ready, NULL};
    rt_options opt;
    memset(&opt, 0, sizeof opt);
    opt.bind = "127.0.0.1";
    opt.token = FZ_TOKEN;
    opt.max_body = 1024; /* small, so 413 is within reach of short inputs */
    opt.timeout_ms = 2000;
    opt.threads = 2;
    rt_server *srv;
    if (runtime_Start(&fn, &opt, &srv, &g_port) != SP_OK) {
        fprintf(stderr, "fuzz_http: runtime_Start: %s\n", sp_LastError());
        abort();
    }
    return 0; /* the server lives as long as the fuzzer */
}

static int64_t now_Ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int fz_Connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    FZ_CHECK(fd >= 0, "socket: %s", strerror(errno));
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)g_port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc = connect(fd, (struct sockaddr *)&a, sizeof a);
    if (rc != 0 && errno == EINTR) {
        /* A signal (libFuzzer's timers) interrupted a connect that goes on in
         * the background: wait for it to finish and read its outcome. */
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int err = 0;
        socklen_t len = sizeof err;
        while (poll(&p, 1, 5000) < 0 && errno == EINTR)
            ;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0)
            rc = 0;
        else
            errno = err ? err : errno;
    }
    FZ_CHECK(rc == 0, "connect: %s", strerror(errno));
    return fd;
}

/* Waits for fd to be ready for `events` until `until`; 0 on timeout. */
static int fz_Wait(int fd, short events, int64_t until)
{
    for (;;) {
        int64_t left = until - now_Ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {fd, events, 0};
        int r = poll(&p, 1, (int)left);
        if (r > 0)
            return 1;
        if (r < 0 && errno != EINTR)
            return 0;
    }
}

/* Reads whatever the server answers: until it closes, or until it has been
 * quiet for FZ_QUIET_MS after sending something, or for `first_ms` before
 * sending anything. Waiting for EOF alone does not work: with epoll,
 * libmicrohttpd does not notice a client's half-close while it waits for the
 * rest of a request or the next keep-alive request, and keeps such a
 * connection until its idle timeout (the runtime documents this). */
static void fz_ReadAnswer(int fd, int first_ms)
{
    char buf[4096], head[8];
    size_t got = 0;
    int64_t until = now_Ms() + FZ_DEADLINE_MS;
    int64_t quiet_until = now_Ms() + first_ms;
    for (;;) {
        if (!fz_Wait(fd, POLLIN, quiet_until < until ? quiet_until : until))
            break;
        ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n <= 0)
            break; /* EOF, or a reset after the server gave up */
        for (ssize_t i = 0; i < n && got < sizeof head; i++)
            head[got++] = buf[i];
        quiet_until = now_Ms() + FZ_QUIET_MS;
    }
    if (got >= 7)
        FZ_CHECK(memcmp(head, "HTTP/1.", 7) == 0, "answer is not an HTTP/1.x response");
}

/* Closes with a reset (SO_LINGER 0), which the server does notice at once,
 * so connections left waiting for more input do not pile up in it. */
static void fz_Abort(int fd)
{
    struct linger l = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(fd);
}

static void fz_Send(int fd, const uint8_t *data, size_t size)
{
    int64_t until = now_Ms() + FZ_DEADLINE_MS;
    size_t sent = 0;
    /* The server may close early (e.g. after a 400); the rest of the input
     * is then simply not delivered. */
    while (sent < size && fz_Wait(fd, POLLOUT, until)) {
        ssize_t n = send(fd, data + sent, size - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n <= 0)
            break;
        sent += (size_t)n;
    }
}

/* Whatever the last input did, the function must still serve others. */
static void fz_CheckHealthy(void)
{
    static const char probe[] = "GET /healthz HTTP/1.1\r\nHost: fuzz\r\n"
                                "Connection: close\r\n\r\n";
    int fd = fz_Connect();
    fz_Send(fd, (const uint8_t *)probe, sizeof probe - 1);
    char buf[512];
    size_t got = 0;
    int64_t until = now_Ms() + FZ_DEADLINE_MS;
    while (got < sizeof buf - 1 && fz_Wait(fd, POLLIN, until)) {
        ssize_t n = recv(fd, buf + got, sizeof buf - 1 - got, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    close(fd);
    FZ_CHECK(strncmp(buf, "HTTP/1.1 200", 12) == 0,
             "GET /healthz after this input: %s", got ? buf : "no answer within the deadline");
}

/* A request whose head is not complete cannot be answered (unless it is
 * already malformed), so it is given little time. */
static int fz_HasHead(const uint8_t *data, size_t size)
{
    for (size_t i = 0; i + 1 < size; i++)
        if (data[i] == '\n' && (data[i + 1] == '\n' ||
                                (i + 2 < size && data[i + 1] == '\r' && data[i + 2] == '\n')))
            return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = fz_Connect();
    fz_Send(fd, data, size);
    shutdown(fd, SHUT_WR);
    fz_ReadAnswer(fd, fz_HasHead(data, size) ? FZ_ANSWER_MS : FZ_PARTIAL_MS);
    fz_Abort(fd);
    fz_CheckHealthy();
    return 0;
}
