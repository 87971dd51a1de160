/* raw_http.h - the canned peer's side of the HTTP client tests: read one
 * request off a socket without an HTTP library, so the tests see exactly
 * what the client sent. Header-only, tests only. */
#ifndef UC_TESTS_RAW_HTTP_H
#define UC_TESTS_RAW_HTTP_H
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* One request (head, then Content-Length bytes of body) into buf, NUL
 * terminated. Waits in polls of poll_ms: with `stop` set, until *stop (a
 * quiet client is waited for); without, the first quiet poll ends it. */
static inline void raw_http_read(int fd, char *buf, size_t cap, int poll_ms, atomic_bool *stop)
{
    size_t n = 0;
    while (n + 1 < cap && !(stop && atomic_load(stop))) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int ready = poll(&p, 1, poll_ms);
        if (ready < 0 || (ready == 0 && !stop))
            break;
        if (ready == 0)
            continue;
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        buf[n] = '\0';
        const char *end = strstr(buf, "\r\n\r\n");
        if (!end)
            continue;
        const char *cl = strcasestr(buf, "\r\nContent-Length:");
        size_t want = (size_t)(end + 4 - buf) + (cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0);
        if (n >= want)
            break;
    }
    buf[n] = '\0';
}

#endif /* UC_TESTS_RAW_HTTP_H */
