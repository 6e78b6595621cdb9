/* mcsend: a paced IPv4 multicast sender for the aiomcast benchmarks.
 *
 * Sends --count datagrams of --size bytes to GROUP:PORT at --rate datagrams/s (0: as fast as
 * it can), in sendmmsg batches of at most --batch, out of the interface whose IPv4 address is
 * --ifaddr, with TTL 1 and no local loopback copy. It stops after --count datagrams or
 * --max-seconds, whichever comes first, and prints one JSON line on stdout.
 *
 * --gso S (1-64) sends with UDP_SEGMENT (GSO) instead: each message of the sendmmsg batch is
 * one buffer of up to S datagrams of --size bytes, back to back, which the kernel splits into
 * separate datagrams (receivers without UDP_GRO see each one on its own). A batch of --batch
 * datagrams is then ceil(batch / S) such messages in one sendmmsg call.
 *
 * Payload formats:
 *   seq     bytes 0-7: sequence number 0, 1, 2, ... (unsigned 64-bit big-endian, as
 *           `aiomcast send --size` writes it); bytes 8-15: CLOCK_MONOTONIC send time in ns
 *           (unsigned 64-bit big-endian), taken just before the sendmmsg call; zeros after.
 *   iperf2  iperf2's UDP header, numbered as iperf2's own client does: signed 32-bit number
 *           0, 1, 2, ..., the CLOCK_REALTIME send time in seconds and microseconds, and the
 *           upper 32 bits of the number; then final datagrams (number -n) that end the stream.
 *   marked  aiomcast's timestamped test payload (`aiomcast send --timestamps`): bytes 0-7 the
 *           sequence number, 8-10 "amc", 11 the flags (0x01: a send time follows), 12-19
 *           CLOCK_REALTIME send time in ns (each big-endian); zeros after.
 *   random  pseudo-random bytes (xorshift64), no header at all: foreign traffic.
 *   high32  bytes 0-7: the sequence number shifted into the high 32 bits (as iperf2's and
 *           RTP's headers look when read as one 64-bit number); zeros after.
 *
 * Pacing: datagram i is due at start + i / rate. The sender sends what is due (at most one
 * batch), then sleeps until the next datagram is due (clock_nanosleep, absolute). A sender that
 * falls behind sends full batches back to back until it has caught up. --quantum-us Q lets
 * what is due gather for Q microseconds: the sender then sleeps until min(batch, rate * Q)
 * datagrams are due (at least one), as a NIC's interrupt coalescing does; the long-run rate
 * is the same, and no burst is longer than Q. Every datagram of a
 * batch carries the same send time (taken just before the call).
 *
 * Build: cc -O2 -o mcsend mcsend.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_BATCH 256
#define MAX_SIZE 1472
/* Datagrams one UDP_SEGMENT send may carry (the kernel's UDP_MAX_SEGMENTS is 64 or more). */
#define MAX_GSO 64
#define GSO_MAX_BYTES 65000
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

static uint64_t now_ns(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void put_be64(unsigned char *p, uint64_t v) {
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

static void put_be32(unsigned char *p, uint32_t v) {
    uint32_t n = htonl(v);
    memcpy(p, &n, 4);
}

static double timeval_s(struct timeval tv) { return (double)tv.tv_sec + tv.tv_usec / 1e6; }

static void usage(void) {
    fprintf(stderr,
            "usage: mcsend --group G --port P --ifaddr A --count N [--rate R] [--size S]\n"
            "              [--batch B] [--gso S] [--quantum-us Q] [--format seq|iperf2|marked|random|high32]\n"
            "              [--max-seconds T]\n");
    exit(2);
}

int main(int argc, char **argv) {
    const char *group = NULL, *ifaddr = NULL, *format = "seq";
    long port = 0, size = 64, batch = 64, gso = 0;
    unsigned long long count = 0;
    double rate = 0, max_seconds = 60, quantum_us = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) usage();
        const char *v = argv[++i];
        if (!strcmp(a, "--group")) group = v;
        else if (!strcmp(a, "--ifaddr")) ifaddr = v;
        else if (!strcmp(a, "--port")) port = strtol(v, NULL, 10);
        else if (!strcmp(a, "--count")) count = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--rate")) rate = strtod(v, NULL);
        else if (!strcmp(a, "--size")) size = strtol(v, NULL, 10);
        else if (!strcmp(a, "--batch")) batch = strtol(v, NULL, 10);
        else if (!strcmp(a, "--gso")) gso = strtol(v, NULL, 10);
        else if (!strcmp(a, "--quantum-us")) quantum_us = strtod(v, NULL);
        else if (!strcmp(a, "--format")) format = v;
        else if (!strcmp(a, "--max-seconds")) max_seconds = strtod(v, NULL);
        else usage();
    }
    int iperf2 = !strcmp(format, "iperf2");
    int marked = !strcmp(format, "marked"), random_bytes = !strcmp(format, "random");
    int high32 = !strcmp(format, "high32");
    if (!group || !ifaddr || port <= 0 || port > 65535 || count == 0 || rate < 0) usage();
    if (size < 16 || size > MAX_SIZE || batch < 1 || batch > MAX_BATCH || max_seconds <= 0) usage();
    if (!iperf2 && !marked && !random_bytes && !high32 && strcmp(format, "seq")) usage();
    uint64_t noise = 0x9e3779b97f4a7c15ull; /* the xorshift64 state of --format random */
    if (gso < 0 || gso > MAX_GSO || quantum_us < 0) usage();
    if (gso > GSO_MAX_BYTES / size) gso = GSO_MAX_BYTES / size; /* one send stays below 64 KiB */

    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) { perror("socket"); return 1; }
    struct in_addr out;
    if (inet_pton(AF_INET, ifaddr, &out) != 1) { fprintf(stderr, "bad --ifaddr\n"); return 2; }
    unsigned char ttl = 1, loop = 0;
    if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &out, sizeof out) < 0 ||
        setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl) < 0 ||
        setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof loop) < 0) {
        perror("setsockopt");
        return 1;
    }
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, group, &to.sin_addr) != 1) { fprintf(stderr, "bad --group\n"); return 2; }

    /* Datagram i of a batch is at data + i * size: one buffer per datagram for sendmmsg, and
     * consecutive datagrams form the buffer of a GSO message. */
    static unsigned char data[MAX_BATCH * MAX_SIZE];
    static struct iovec iov[MAX_BATCH];
    static struct mmsghdr msgs[MAX_BATCH];
    static union {
        char raw[CMSG_SPACE(sizeof(uint16_t))];
        struct cmsghdr align;
    } control[MAX_BATCH];
    for (int i = 0; i < MAX_BATCH; i++) {
        iov[i].iov_base = data + (size_t)i * (size_t)size * (size_t)(gso ? gso : 1);
        iov[i].iov_len = (size_t)size;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_name = &to;
        msgs[i].msg_hdr.msg_namelen = sizeof to;
        if (gso) {
            msgs[i].msg_hdr.msg_control = control[i].raw;
            msgs[i].msg_hdr.msg_controllen = sizeof control[i].raw;
            struct cmsghdr *cm = CMSG_FIRSTHDR(&msgs[i].msg_hdr);
            cm->cmsg_level = SOL_UDP;
            cm->cmsg_type = UDP_SEGMENT;
            cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
            uint16_t segment = (uint16_t)size;
            memcpy(CMSG_DATA(cm), &segment, sizeof segment);
        }
    }

    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    uint64_t start = now_ns(CLOCK_MONOTONIC);
    uint64_t limit = start + (uint64_t)(max_seconds * 1e9);
    unsigned long long sent = 0, errors = 0, calls = 0;
    int timed_out = 0;
    /* Datagrams to let gather before a paced send (1: send as soon as one is due). */
    unsigned long long gather = (unsigned long long)(rate * quantum_us / 1e6);
    if (gather > (unsigned long long)batch) gather = (unsigned long long)batch;
    if (gather < 1) gather = 1;
    while (sent < count) {
        uint64_t now = now_ns(CLOCK_MONOTONIC);
        if (now >= limit) { timed_out = 1; break; }
        unsigned long long due = count - sent;
        if (rate > 0) {
            unsigned long long owed = (unsigned long long)((double)(now - start) * rate / 1e9) + 1;
            unsigned long long want = gather < count - sent ? gather : count - sent;
            if (owed < sent + want) {
                uint64_t next = start + (uint64_t)((double)(sent + want - 1) * 1e9 / rate);
                struct timespec ts = {.tv_sec = (time_t)(next / 1000000000ull),
                                      .tv_nsec = (long)(next % 1000000000ull)};
                clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
                continue;
            }
            if (owed - sent < due) due = owed - sent;
        }
        int n = due < (unsigned long long)batch ? (int)due : (int)batch;
        uint64_t stamp = now_ns(iperf2 || marked ? CLOCK_REALTIME : CLOCK_MONOTONIC);
        for (int i = 0; i < n; i++) {
            unsigned char *p = data + (size_t)i * (size_t)size;
            uint64_t number = sent + (uint64_t)i;
            if (random_bytes) {
                for (size_t k = 0; k + 8 <= (size_t)size; k += 8) {
                    noise ^= noise << 13;
                    noise ^= noise >> 7;
                    noise ^= noise << 17;
                    memcpy(p + k, &noise, 8);
                }
            } else if (high32) {
                put_be64(p, number << 32);
            } else if (marked) {
                put_be64(p, number);
                memcpy(p + 8, "amc\x01", 4);
                put_be64(p + 12, stamp);
            } else if (iperf2) {
                put_be32(p, (uint32_t)number);
                put_be32(p + 4, (uint32_t)(stamp / 1000000000ull));
                put_be32(p + 8, (uint32_t)(stamp % 1000000000ull / 1000u));
                put_be32(p + 12, (uint32_t)(number >> 32));
            } else {
                put_be64(p, number);
                put_be64(p + 8, stamp);
            }
        }
        /* Messages of this batch: one per datagram, or one per gso datagrams (the last one
         * shorter; its segment size stays the same). */
        int nmsg = n, last = 1;
        if (gso) {
            nmsg = (n + (int)gso - 1) / (int)gso;
            last = n - (nmsg - 1) * (int)gso;
            for (int m = 0; m < nmsg; m++)
                iov[m].iov_len = (size_t)size * (size_t)(m == nmsg - 1 ? last : gso);
        }
        int done = sendmmsg(fd, msgs, (unsigned)nmsg, 0);
        calls++;
        if (done < 0) {
            if (errno == EINTR) continue;
            /* ENOBUFS / EAGAIN: the first message is lost; count it as sent-and-failed. */
            errors++;
            done = 1;
        }
        /* Datagrams in the first `done` messages. */
        sent += gso ? (unsigned long long)(done == nmsg ? n : done * (int)gso)
                    : (unsigned long long)done;
    }
    uint64_t end = now_ns(CLOCK_MONOTONIC);
    getrusage(RUSAGE_SELF, &ru1);
    if (iperf2) {
        /* iperf2's client numbers from 0 and ends with -n after n datagrams; its server then
         * counts n in all. */
        uint64_t stamp = now_ns(CLOCK_REALTIME);
        unsigned char *p = data;
        memset(p, 0, (size_t)size);
        put_be32(p, (uint32_t)(-(int32_t)(sent & 0x7fffffffu)));
        put_be32(p + 4, (uint32_t)(stamp / 1000000000ull));
        put_be32(p + 8, (uint32_t)(stamp % 1000000000ull / 1000u));
        put_be32(p + 12, (uint32_t)-1);
        for (int i = 0; i < 5; i++) {
            sendto(fd, p, (size_t)size, 0, (struct sockaddr *)&to, sizeof to);
            struct timespec pause = {0, 10000000};
            nanosleep(&pause, NULL);
        }
    }
    double elapsed = (double)(end - start) / 1e9;
    double user = timeval_s(ru1.ru_utime) - timeval_s(ru0.ru_utime);
    double sys = timeval_s(ru1.ru_stime) - timeval_s(ru0.ru_stime);
    printf("{\"sender\": \"%s\", \"format\": \"%s\", \"gso\": %ld, \"batch\": %ld, "
           "\"quantum_us\": %g, \"rate_target\": %.0f, "
           "\"count_target\": %llu, \"sent\": %llu, \"errors\": %llu, \"calls\": %llu, "
           "\"elapsed_s\": %.6f, \"rate\": %.1f, \"user_s\": %.6f, \"sys_s\": %.6f, "
           "\"cpu_s\": %.6f, \"timed_out\": %s}\n",
           gso ? "c-gso" : "c-sendmmsg", format, gso, batch, quantum_us, rate, count, sent, errors, calls,
           elapsed, elapsed > 0 ? sent / elapsed : 0.0, user, sys, user + sys,
           timed_out ? "true" : "false");
    close(fd);
    return 0;
}
