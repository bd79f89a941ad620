/*
 * rolecast-boot: the initramfs's HTTP client for what busybox wget cannot do (issue 16). Built static
 * (gcc -static) with the initramfs, like rolecast-hw.
 *
 *   rolecast-boot get URL TOKEN            GET URL with "Authorization: Bearer TOKEN" from a source port
 *                                          below 1024; the body to stdout (the secret bundle)
 *   rolecast-boot post URL KEYFILE BOOT    POST stdin as JSON, signed: X-Rolecast-Boot: BOOT and
 *                                          X-Rolecast-Signature: HMAC-SHA256(key file's text, body) in hex
 *   rolecast-boot sign KEYFILE             print that signature of stdin
 *
 * Why a source port below 1024: only root can bind one (as Warewulf's wwclient), so a user process on
 * any box - this one after it boots included - cannot fetch the secrets with the boot token it read
 * from /proc/cmdline. busybox wget cannot choose its source port. URL is http://IPv4[:port]/path.
 * Exit: 0 a 2xx answer, 1 any other answer (status line and body on stderr), 2 usage, 3 no connection.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_BODY (8 << 20)

/* SHA-256 (FIPS 180-4) and HMAC (RFC 2104): no library in a static initramfs helper. */
typedef struct { uint32_t h[8]; uint64_t len; unsigned char buf[64]; size_t n; } sha256;
static const uint32_t K[64] = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01,
  0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc,
  0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
  0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08,
  0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
  0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha_block(sha256 *s, const unsigned char *p) {
  uint32_t w[64], v[8];
  for (int i = 0; i < 16; i++) w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
  for (int i = 16; i < 64; i++) {
    uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3), s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  memcpy(v, s->h, sizeof v);
  for (int i = 0; i < 64; i++) {
    uint32_t t1 = v[7] + (ROR(v[4], 6) ^ ROR(v[4], 11) ^ ROR(v[4], 25)) + ((v[4] & v[5]) ^ (~v[4] & v[6])) + K[i] + w[i];
    uint32_t t2 = (ROR(v[0], 2) ^ ROR(v[0], 13) ^ ROR(v[0], 22)) + ((v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]));
    memmove(v + 1, v, 7 * sizeof v[0]);
    v[4] += t1;
    v[0] = t1 + t2;
  }
  for (int i = 0; i < 8; i++) s->h[i] += v[i];
}

static void sha_init(sha256 *s) {
  static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  memcpy(s->h, h0, sizeof h0);
  s->len = 0;
  s->n = 0;
}

static void sha_update(sha256 *s, const unsigned char *p, size_t n) {
  s->len += n;
  while (n--) {
    s->buf[s->n++] = *p++;
    if (s->n == 64) { sha_block(s, s->buf); s->n = 0; }
  }
}

static void sha_final(sha256 *s, unsigned char out[32]) {
  uint64_t bits = s->len * 8;
  unsigned char pad = 0x80, zero = 0, l[8];
  sha_update(s, &pad, 1);
  while (s->n != 56) sha_update(s, &zero, 1);
  for (int i = 0; i < 8; i++) l[i] = (unsigned char)(bits >> (56 - 8 * i));
  sha_update(s, l, 8);
  for (int i = 0; i < 8; i++) for (int j = 0; j < 4; j++) out[4 * i + j] = (unsigned char)(s->h[i] >> (24 - 8 * j));
}

static void hmac_hex(const unsigned char *key, size_t klen, const unsigned char *msg, size_t mlen, char hex[65]) {
  unsigned char k[64] = {0}, pad[64], inner[32], out[32];
  sha256 s;
  if (klen > 64) { sha_init(&s); sha_update(&s, key, klen); sha_final(&s, k); } else memcpy(k, key, klen);
  for (int i = 0; i < 64; i++) pad[i] = k[i] ^ 0x36;
  sha_init(&s); sha_update(&s, pad, 64); sha_update(&s, msg, mlen); sha_final(&s, inner);
  for (int i = 0; i < 64; i++) pad[i] = k[i] ^ 0x5c;
  sha_init(&s); sha_update(&s, pad, 64); sha_update(&s, inner, 32); sha_final(&s, out);
  for (int i = 0; i < 32; i++) sprintf(hex + 2 * i, "%02x", out[i]);
}

/* All of a stream (stdin, a key file), at most MAX_BODY bytes. */
static unsigned char *slurp(FILE *f, size_t *n) {
  unsigned char *b = malloc(MAX_BODY + 1);
  if (!b) return NULL;
  *n = fread(b, 1, MAX_BODY + 1, f);
  if (*n > MAX_BODY) { free(b); return NULL; }
  return b;
}

/* The key file's text without trailing white space: the same bytes the server keys its HMAC with. */
static int read_key(const char *path, unsigned char **key, size_t *n) {
  FILE *f = fopen(path, "r");
  if (!f) { fprintf(stderr, "rolecast-boot: %s: %s\n", path, strerror(errno)); return -1; }
  *key = slurp(f, n);
  fclose(f);
  if (!*key) return -1;
  while (*n && ((*key)[*n - 1] == '\n' || (*key)[*n - 1] == '\r' || (*key)[*n - 1] == ' ')) (*n)--;
  return 0;
}

struct url { struct sockaddr_in addr; char host[64]; const char *path; };

static int parse_url(const char *u, struct url *out) {
  if (strncmp(u, "http://", 7) != 0) return -1;
  const char *h = u + 7, *slash = strchr(h, '/'), *colon = strchr(h, ':');
  size_t hl = (size_t)((colon && (!slash || colon < slash) ? colon : slash ? slash : h + strlen(h)) - h);
  if (!slash || hl == 0 || hl >= sizeof out->host) return -1;
  memcpy(out->host, h, hl);
  out->host[hl] = 0;
  memset(&out->addr, 0, sizeof out->addr);
  out->addr.sin_family = AF_INET;
  out->addr.sin_port = htons(colon && colon < slash ? (uint16_t)atoi(colon + 1) : 80);
  out->path = slash;
  return inet_pton(AF_INET, out->host, &out->addr.sin_addr) == 1 ? 0 : -1;
}

/* A connection from a source port in 600..1023 (root only); EACCES (not root) falls back to any port,
 * and the server says no. A port in use, or in TIME_WAIT towards this server, is skipped. */
static int connect_privileged(const struct url *u) {
  struct timeval tv = {.tv_sec = 10};
  int start = 600 + (int)((unsigned)getpid() * 7919u + (unsigned)time(NULL)) % 424;
  for (int i = 0; i < 424 + 1; i++) {
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    if (fd < 0) return -1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv); /* bounds connect() too (Linux) */
    if (i < 424) {
      struct sockaddr_in src = {.sin_family = AF_INET, .sin_port = htons((uint16_t)(600 + (start - 600 + i) % 424))};
      if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) {
        int e = errno;
        close(fd);
        if (e == EADDRINUSE) continue;
        fprintf(stderr, "rolecast-boot: cannot bind a port below 1024 (%s): trying an ordinary one\n", strerror(e));
        i = 424 - 1;
        continue;
      }
    }
    if (connect(fd, (const struct sockaddr *)&u->addr, sizeof u->addr) == 0) return fd;
    int e = errno;
    close(fd);
    if (e != EADDRNOTAVAIL && e != EADDRINUSE) { fprintf(stderr, "rolecast-boot: connect %s: %s\n", u->host, strerror(e)); return -1; }
  }
  return -1;
}

static int send_all(int fd, const void *p, size_t n) {
  for (const char *c = p; n;) {
    ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
    if (w <= 0) return -1;
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

/* One HTTP/1.0 exchange: "METHOD PATH", extra header lines (each ending CRLF), a body. The answer's
 * body goes to `out`, or its status line and body to stderr. */
static int exchange(const char *url, const char *method, const char *headers, const unsigned char *body, size_t blen, FILE *out) {
  struct url u;
  if (parse_url(url, &u) < 0) { fprintf(stderr, "rolecast-boot: %s: not http://IPv4[:port]/path\n", url); return 2; }
  char req[4096];
  int n = snprintf(req, sizeof req, "%s %s HTTP/1.0\r\nHost: %s:%u\r\n%sConnection: close\r\n\r\n", method, u.path, u.host, ntohs(u.addr.sin_port), headers);
  if (n <= 0 || (size_t)n >= sizeof req) { fprintf(stderr, "rolecast-boot: request too long\n"); return 2; }
  int fd = connect_privileged(&u);
  if (fd < 0) return 3;
  if (send_all(fd, req, (size_t)n) < 0 || (blen && send_all(fd, body, blen) < 0)) {
    fprintf(stderr, "rolecast-boot: sending to %s failed: %s\n", u.host, strerror(errno));
    close(fd);
    return 3;
  }
  size_t cap = 65536, len = 0;
  char *r = malloc(cap + 1);
  for (ssize_t got; r && (got = recv(fd, r + len, cap - len, 0)) > 0;) {
    len += (size_t)got;
    if (len == cap) { if (cap >= MAX_BODY) break; cap *= 2; r = realloc(r, cap + 1); }
  }
  close(fd);
  if (!r) return 3;
  r[len] = 0;
  char *end = strstr(r, "\r\n\r\n");
  int status = 0;
  if (!end || sscanf(r, "HTTP/%*d.%*d %d", &status) != 1) { fprintf(stderr, "rolecast-boot: no HTTP answer from %s\n", u.host); free(r); return 3; }
  char *b = end + 4, *cl = strstr(r, "\r\nContent-Length:");
  if (!cl) cl = strstr(r, "\r\ncontent-length:");
  size_t blen_got = len - (size_t)(b - r);
  if (cl && cl < end && (size_t)atol(cl + 17) != blen_got) { fprintf(stderr, "rolecast-boot: answer cut short (%zu of %ld bytes)\n", blen_got, atol(cl + 17)); free(r); return 3; }
  int ok = status >= 200 && status < 300;
  if (!ok) fprintf(stderr, "rolecast-boot: %.*s\n", (int)(strchr(r, '\r') - r), r);
  fwrite(b, 1, blen_got, ok ? out : stderr);
  if (!ok) fputc('\n', stderr);
  free(r);
  return ok ? 0 : 1;
}

/* Header values come from the command line: no CR or LF may split them into more headers. */
static int clean(const char *v) {
  return strpbrk(v, "\r\n") == NULL && strlen(v) < 512;
}

int main(int argc, char **argv) {
  char headers[1536], sig[65];
  if (argc == 4 && strcmp(argv[1], "get") == 0) {
    if (!clean(argv[3])) { fprintf(stderr, "rolecast-boot: bad token\n"); return 2; }
    snprintf(headers, sizeof headers, "Authorization: Bearer %s\r\n", argv[3]);
    return exchange(argv[2], "GET", headers, NULL, 0, stdout);
  }
  if ((argc == 3 && strcmp(argv[1], "sign") == 0) || (argc == 5 && strcmp(argv[1], "post") == 0)) {
    unsigned char *key, *body;
    size_t klen, blen;
    if (read_key(argv[argc == 3 ? 2 : 3], &key, &klen) < 0) return 2;
    if (!(body = slurp(stdin, &blen))) { fprintf(stderr, "rolecast-boot: body larger than %d bytes\n", MAX_BODY); return 2; }
    hmac_hex(key, klen, body, blen, sig);
    if (argc == 3) { printf("%s\n", sig); return 0; }
    if (!clean(argv[4])) { fprintf(stderr, "rolecast-boot: bad boot id\n"); return 2; }
    snprintf(headers, sizeof headers, "Content-Type: application/json\r\nX-Rolecast-Boot: %s\r\nX-Rolecast-Signature: %s\r\nContent-Length: %zu\r\n", argv[4], sig, blen);
    return exchange(argv[2], "POST", headers, body, blen, stdout);
  }
  fprintf(stderr, "usage: rolecast-boot get URL TOKEN | post URL KEYFILE BOOT < body | sign KEYFILE < body\n");
  return 2;
}
