/* Timestamps of the phases of one PAM login, from inside the pamtester process.
 *
 * LD_PRELOAD'ed next to libpam_wrapper by pam_phases.sh. It wraps dlopen, dlclose, connect,
 * send and recv (what pam_pi's std UnixStream calls), records when each call started and ended
 * (CLOCK_MONOTONIC, ns) in a static buffer, and appends them to $PAM_PHASES_LOG when the process
 * exits, one "name start end" line each, after a "start" line from the constructor. Nothing is
 * written while the login runs, so the measurement adds only the clock reads.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

static char events[8192];
static int used;

static long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

static void record(const char *name, const char *detail, long started, long ended)
{
    if (used < (int)sizeof events - 128)
        used += snprintf(events + used, sizeof events - used, "%s%s%.60s %ld %ld\n", name,
                         detail ? ":" : "", detail ? detail : "", started, ended);
}

__attribute__((constructor)) static void begin(void) { record("start", NULL, now_ns(), 0); }

__attribute__((destructor)) static void end(void)
{
    const char *path = getenv("PAM_PHASES_LOG");
    FILE *f = path ? fopen(path, "a") : NULL;
    if (f) {
        fprintf(f, "%send %ld 0\n", events, now_ns());
        fclose(f);
    }
}

#define NEXT(type, name) static type real; if (!real) real = (type)dlsym(RTLD_NEXT, name)

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
    typedef ssize_t (*fn)(int, const void *, size_t, int);
    NEXT(fn, "send");
    long t0 = now_ns();
    ssize_t r = real(fd, buf, len, flags);
    record("send", NULL, t0, now_ns());
    return r;
}

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
    typedef ssize_t (*fn)(int, void *, size_t, int);
    NEXT(fn, "recv");
    long t0 = now_ns();
    ssize_t r = real(fd, buf, len, flags);
    int saved = errno;
    /* pam_pi's busy wait peeks without blocking, hundreds of times per answer: not a phase. */
    if (!(r < 0 && (flags & MSG_DONTWAIT)))
        record("recv", NULL, t0, now_ns());
    errno = saved;
    return r;
}

int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
    typedef int (*fn)(int, const struct sockaddr *, socklen_t);
    NEXT(fn, "connect");
    long t0 = now_ns();
    int r = real(fd, addr, len);
    record("connect", NULL, t0, now_ns());
    return r;
}

void *dlopen(const char *file, int mode)
{
    typedef void *(*fn)(const char *, int);
    NEXT(fn, "dlopen");
    long t0 = now_ns();
    void *r = real(file, mode);
    const char *base = file ? file : "-";
    for (const char *p = base; *p; p++)
        if (*p == '/')
            base = p + 1;
    record("dlopen", base, t0, now_ns());
    return r;
}

int dlclose(void *handle)
{
    typedef int (*fn)(void *);
    NEXT(fn, "dlclose");
    long t0 = now_ns();
    int r = real(handle);
    record("dlclose", NULL, t0, now_ns());
    return r;
}
