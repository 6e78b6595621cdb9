/* mcrecv: the reference receiver of the aiomcast benchmarks (recvmmsg, batches of 64).
 *
 * Joins GROUP on the interface whose IPv4 address is --ifaddr, binds the wildcard address on
 * PORT (SO_REUSEADDR, IP_MULTICAST_ALL off, SO_RCVBUF --rcvbuf if given: SO_RCVBUFFORCE past
 * net.core.rmem_max as root), prints "ready" once joined, then counts datagrams until none
 * arrived for --idle seconds (or none at all within --first-timeout), and prints one JSON line.
 * Payload formats are those of mcsend.c: with "seq" it counts unique sequence numbers below
 * --expect and duplicates, and with --latency it records the one-way
 * latency of every datagram (CLOCK_MONOTONIC now minus the send time in the payload) and
 * reports percentiles; "iperf2" reads iperf2's sequence numbers; "none" only counts.
 *
 * Build: cc -O2 -o mcrecv mcrecv.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define SLOT 2048
#ifndef IP_MULTICAST_ALL
#define IP_MULTICAST_ALL 49
#endif
#ifndef SO_MEMINFO
#define SO_MEMINFO 55
#endif

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t get_be64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | p[i];
    return v;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void usage(void) {
    fprintf(stderr,
            "usage: mcrecv --group G --port P --ifaddr A [--expect N] [--format seq|iperf2|none]\n"
            "              [--latency 0|1] [--idle S] [--first-timeout S] [--rcvbuf BYTES]\n");
    exit(2);
}

int main(int argc, char **argv) {
    const char *group = NULL, *ifaddr = NULL, *format = "seq";
    long port = 0;
    unsigned long long expect = 0;
    int latency = 0, rcvbuf = 0;
    double idle = 0.5, first_timeout = 15;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) usage();
        const char *v = argv[++i];
        if (!strcmp(a, "--group")) group = v;
        else if (!strcmp(a, "--ifaddr")) ifaddr = v;
        else if (!strcmp(a, "--port")) port = strtol(v, NULL, 10);
        else if (!strcmp(a, "--expect")) expect = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--format")) format = v;
        else if (!strcmp(a, "--latency")) latency = atoi(v);
        else if (!strcmp(a, "--idle")) idle = strtod(v, NULL);
        else if (!strcmp(a, "--first-timeout")) first_timeout = strtod(v, NULL);
        else if (!strcmp(a, "--rcvbuf")) rcvbuf = atoi(v);
        else usage();
    }
    int fmt_seq = !strcmp(format, "seq"), fmt_iperf2 = !strcmp(format, "iperf2");
    if (!group || !ifaddr || port <= 0 || port > 65535) usage();
    if (!fmt_seq && !fmt_iperf2 && strcmp(format, "none")) usage();
    if (!fmt_seq) latency = 0;

    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) { perror("socket"); return 1; }
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, IPPROTO_IP, IP_MULTICAST_ALL, &zero, sizeof zero);
    if (rcvbuf > 0) {
        /* As receivers.py's set_rcvbuf: past net.core.rmem_max with SO_RCVBUFFORCE (root). */
        int granted = 0;
        socklen_t glen = sizeof granted;
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
        getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &granted, &glen);
        if (granted / 2 < rcvbuf) setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf);
    }
    struct sockaddr_in local = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (bind(fd, (struct sockaddr *)&local, sizeof local) < 0) { perror("bind"); return 1; }
    struct ip_mreq mreq;
    if (inet_pton(AF_INET, group, &mreq.imr_multiaddr) != 1 ||
        inet_pton(AF_INET, ifaddr, &mreq.imr_interface) != 1) {
        fprintf(stderr, "bad --group or --ifaddr\n");
        return 2;
    }
    if (setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof mreq) < 0) {
        perror("IP_ADD_MEMBERSHIP");
        return 1;
    }
    struct timeval tick = {0, 50000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof tick);

    unsigned char *seen = expect ? calloc(expect + 1, 1) : NULL;
    int64_t *lat = latency && expect ? malloc(sizeof(int64_t) * (expect + 1)) : NULL;
    unsigned long long nlat = 0;
    static unsigned char bufs[BATCH][SLOT];
    static struct iovec iov[BATCH];
    static struct mmsghdr msgs[BATCH];
    for (int i = 0; i < BATCH; i++) {
        iov[i].iov_base = bufs[i];
        iov[i].iov_len = SLOT;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    printf("ready\n");
    fflush(stdout);

    unsigned long long received = 0, unique = 0, duplicates = 0, out_of_range = 0, calls = 0;
    unsigned long long finals = 0;
    uint64_t start = now_ns(), first = 0, last = 0;
    for (;;) {
        int n = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL);
        uint64_t now = now_ns();
        if (n <= 0) {
            if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                perror("recvmmsg");
                return 1;
            }
            if (received ? (double)(now - last) / 1e9 > idle
                         : (double)(now - start) / 1e9 > first_timeout)
                break;
            continue;
        }
        calls++;
        if (!first) first = now;
        last = now;
        for (int i = 0; i < n; i++) {
            const unsigned char *p = bufs[i];
            unsigned len = msgs[i].msg_len;
            uint64_t number;
            if (fmt_iperf2) {
                if (len < 16) { out_of_range++; continue; }
                int32_t id = (int32_t)ntohl(*(const uint32_t *)p);
                if (id < 0) { finals++; continue; }
                number = (uint64_t)ntohl(*(const uint32_t *)(p + 12)) << 32 | (uint32_t)id;
            } else if (fmt_seq) {
                if (len < 16) { out_of_range++; continue; }
                number = get_be64(p);
                if (lat && nlat <= expect) lat[nlat++] = (int64_t)(now_ns() - get_be64(p + 8));
            } else {
                received++;
                continue;
            }
            received++;
            if (!seen || number > expect) { out_of_range++; continue; }
            if (seen[number]) duplicates++;
            else { seen[number] = 1; unique++; }
        }
    }
    /* SO_MEMINFO's ninth word (SK_MEMINFO_DROPS): datagrams the kernel dropped for us. */
    uint32_t meminfo[9] = {0};
    socklen_t mlen = sizeof meminfo;
    getsockopt(fd, SOL_SOCKET, SO_MEMINFO, meminfo, &mlen);
    printf("{\"receiver\": \"c-recvmmsg\", \"received\": %llu, \"unique\": %llu, "
           "\"duplicates\": %llu, \"out_of_range\": %llu, \"finals\": %llu, \"calls\": %llu, "
           "\"kernel_dropped\": %llu, \"span_s\": %.6f",
           received, unique, duplicates, out_of_range, finals, calls,
           (unsigned long long)meminfo[8], first ? (double)(last - first) / 1e9 : 0.0);
    if (lat && nlat) {
        qsort(lat, nlat, sizeof *lat, cmp_i64);
        double sum = 0;
        for (unsigned long long i = 0; i < nlat; i++) sum += (double)lat[i];
        printf(", \"latency_us\": {\"samples\": %llu, \"p50\": %.3f, \"p90\": %.3f, "
               "\"p99\": %.3f, \"max\": %.3f, \"mean\": %.3f}",
               nlat, lat[nlat / 2] / 1e3, lat[nlat * 90 / 100] / 1e3, lat[nlat * 99 / 100] / 1e3,
               lat[nlat - 1] / 1e3, sum / (double)nlat / 1e3);
    }
    printf("}\n");
    close(fd);
    return 0;
}
