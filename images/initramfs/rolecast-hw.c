/*
 * rolecast-hw: the two hardware facts busybox cannot read, for the commissioning image
 * (rolecast.action=discover). Built static (gcc -static) when the initramfs is built: no libraries,
 * no daemon, no user, nothing sent on the wire.
 *
 *   rolecast-hw lldp SECONDS IFACE...   listen for one LLDPDU per interface (IEEE 802.1AB), print
 *                                       "IFACE {json}" per neighbour heard; stop when every interface
 *                                       has one or the time is up (a switch sends every 30 s by default)
 *   rolecast-hw bmc                     the BMC's LAN address and MAC from /dev/ipmi0 (IPMI 2.0 §23.2
 *                                       Get LAN Configuration Parameters, parameters 3 and 5), as JSON
 *
 * Why not lldpd in the initramfs: it is a daemon with a privilege-separation user, a chroot, a control
 * socket and five shared libraries, and it would announce the blank box to the switch; receiving and
 * decoding four TLVs is all commissioning needs. Why not ipmitool: a dozen shared libraries for one
 * request.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/ipmi.h>
#include <net/if.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ETH_P_LLDP_ 0x88cc
#define MAX_IF 32

/* A JSON string of printable bytes; anything else is dropped (RFC 8259 §7 escapes for " and \). */
static void json_str(const unsigned char *p, int n) {
  putchar('"');
  for (int i = 0; i < n; i++) {
    if (p[i] == '"' || p[i] == '\\') printf("\\%c", p[i]);
    else if (p[i] >= 0x20 && p[i] < 0x7f) putchar(p[i]);
  }
  putchar('"');
}

static void json_mac(const unsigned char *p) {
  printf("\"%02x:%02x:%02x:%02x:%02x:%02x\"", p[0], p[1], p[2], p[3], p[4], p[5]);
}

/* Chassis ID subtype 4 and port ID subtype 3 are MAC addresses (802.1AB §8.5.2.2, §8.5.3.2);
 * chassis subtype 5 is a network address (first byte: IANA family, 1 = IPv4). */
static void json_id(const unsigned char *v, int n, int mac_subtype, int addr_subtype) {
  if (n == 7 && v[0] == mac_subtype) json_mac(v + 1);
  else if (n == 6 && v[0] == addr_subtype && v[1] == 1) printf("\"%u.%u.%u.%u\"", v[2], v[3], v[4], v[5]);
  else json_str(v + 1, n - 1);
}

/* Decode one LLDPDU (the frame's payload after the Ethernet header). */
static void print_lldpdu(const char *ifname, const unsigned char *p, int n) {
  int off = 0, first = 1, vlan = -1;
  printf("%s {", ifname);
  while (off + 2 <= n) {
    int type = p[off] >> 1, len = ((p[off] & 1) << 8) | p[off + 1];
    const unsigned char *v = p + off + 2;
    if (type == 0 || off + 2 + len > n) break;
    const char *key = type == 1 ? "chassis" : type == 2 ? "port" : type == 5 ? "system" : NULL;
    if (key && len >= 1) {
      printf("%s\"%s\":", first ? "" : ",", key);
      if (type == 1) json_id(v, len, 4, 5);
      else if (type == 2) json_id(v, len, 3, 4);
      else json_str(v, len);
      first = 0;
    }
    /* Organisationally specific, IEEE 802.1 (OUI 00-80-C2): subtype 1 Port VLAN ID, else subtype 3
     * (VLAN name) carries a VLAN id too. */
    if (type == 127 && len >= 6 && v[0] == 0x00 && v[1] == 0x80 && v[2] == 0xc2) {
      if (v[3] == 1) vlan = (v[4] << 8) | v[5];
      else if (v[3] == 3 && vlan < 0) vlan = (v[4] << 8) | v[5];
    }
    off += 2 + len;
  }
  if (vlan > 0 && vlan < 4095) printf("%s\"vlan\":%d", first ? "" : ",", vlan);
  printf("}\n");
  fflush(stdout);
}

static int lldp_socket(const char *ifname) {
  int ifindex = (int)if_nametoindex(ifname);
  if (!ifindex) return -1;
  int s = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_LLDP_));
  if (s < 0) return -1;
  struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_LLDP_), .sll_ifindex = ifindex};
  /* The nearest-bridge group address: a NIC filtering multicast drops LLDP unless we join it. */
  struct packet_mreq mr = {.mr_ifindex = ifindex, .mr_type = PACKET_MR_MULTICAST, .mr_alen = 6,
                           .mr_address = {0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e}};
  if (bind(s, (struct sockaddr *)&sll, sizeof sll) < 0) { close(s); return -1; }
  setsockopt(s, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr);
  return s;
}

static long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

static int lldp(int seconds, int nif, char **ifs) {
  struct pollfd pf[MAX_IF];
  int done[MAX_IF] = {0}, open = 0;
  if (nif > MAX_IF) nif = MAX_IF;
  for (int i = 0; i < nif; i++) {
    pf[i].fd = lldp_socket(ifs[i]);
    pf[i].events = POLLIN;
    if (pf[i].fd < 0) { fprintf(stderr, "rolecast-hw: %s: %s\n", ifs[i], strerror(errno)); done[i] = 1; }
    else open++;
  }
  long end = now_ms() + seconds * 1000L;
  while (open > 0 && now_ms() < end) {
    if (poll(pf, (nfds_t)nif, (int)(end - now_ms())) <= 0) continue;
    for (int i = 0; i < nif; i++) {
      if (done[i] || !(pf[i].revents & POLLIN)) continue;
      unsigned char buf[9216];
      ssize_t n = recv(pf[i].fd, buf, sizeof buf, 0);
      if (n <= ETH_HLEN) continue;
      print_lldpdu(ifs[i], buf + ETH_HLEN, (int)n - ETH_HLEN);
      done[i] = 1;
      open--;
    }
  }
  return 0;
}

/* One IPMI request to the BMC through the kernel's device interface; returns the response length. */
static int ipmi_cmd(int fd, unsigned char netfn, unsigned char cmd, unsigned char *data, int dlen, unsigned char *rsp, int rlen) {
  struct ipmi_system_interface_addr bmc = {.addr_type = IPMI_SYSTEM_INTERFACE_ADDR_TYPE, .channel = IPMI_BMC_CHANNEL, .lun = 0};
  struct ipmi_req req = {.addr = (unsigned char *)&bmc, .addr_len = sizeof bmc, .msgid = 1,
                         .msg = {.netfn = netfn, .cmd = cmd, .data_len = (unsigned short)dlen, .data = data}};
  if (ioctl(fd, IPMICTL_SEND_COMMAND, &req) < 0) return -1;
  struct pollfd pf = {.fd = fd, .events = POLLIN};
  if (poll(&pf, 1, 5000) <= 0) return -1;
  struct ipmi_addr addr;
  struct ipmi_recv recv = {.addr = (unsigned char *)&addr, .addr_len = sizeof addr, .msg = {.data = rsp, .data_len = (unsigned short)rlen}};
  if (ioctl(fd, IPMICTL_RECEIVE_MSG_TRUNC, &recv) < 0) return -1;
  return recv.msg.data_len;
}

static int bmc(void) {
  int fd = open("/dev/ipmi0", O_RDWR);
  if (fd < 0) { fprintf(stderr, "rolecast-hw: /dev/ipmi0: %s\n", strerror(errno)); return 1; }
  /* LAN channels are usually 1; some boards use 2..7. Response: completion code, revision, data. */
  for (unsigned char ch = 1; ch <= 7; ch++) {
    unsigned char ipreq[4] = {ch, 3, 0, 0}, macreq[4] = {ch, 5, 0, 0}, ip[16], mac[16];
    int n = ipmi_cmd(fd, 0x0c, 0x02, ipreq, 4, ip, sizeof ip);
    if (n < 6 || ip[0] != 0) continue;
    int m = ipmi_cmd(fd, 0x0c, 0x02, macreq, 4, mac, sizeof mac);
    printf("{\"address\":\"%u.%u.%u.%u\"", ip[2], ip[3], ip[4], ip[5]);
    if (m >= 8 && mac[0] == 0) { printf(",\"mac\":"); json_mac(mac + 2); }
    printf("}\n");
    close(fd);
    return 0;
  }
  close(fd);
  return 1;
}

int main(int argc, char **argv) {
  if (argc >= 4 && strcmp(argv[1], "lldp") == 0) return lldp(atoi(argv[2]), argc - 3, argv + 3);
  if (argc == 2 && strcmp(argv[1], "bmc") == 0) return bmc();
  fprintf(stderr, "usage: rolecast-hw lldp SECONDS IFACE... | rolecast-hw bmc\n");
  return 2;
}
