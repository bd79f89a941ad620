// Installs an IPv4 neighbour (ARP) entry: ip -> mac on one interface, as dnsmasq does before it unicasts a
// DHCP reply to a client that has no address yet (RFC 2131 §4.1: the client cannot answer ARP for yiaddr).
// SIOCSARP needs CAP_NET_ADMIN; the errno is returned (0 = installed), never thrown, so the caller can fall
// back to broadcast.
//
//   setArp(ifname: string, ip: number (host order uint32), mac: Buffer(6)) -> errno
#include <errno.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <node_api.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static int arp_fd = -1; // one AF_INET datagram socket for the ioctls, opened on first use

static napi_value set_arp(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_value result;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3) {
    napi_throw_type_error(env, NULL, "setArp(ifname, ip, mac) needs three arguments");
    return NULL;
  }
  char ifname[IFNAMSIZ];
  size_t len = 0;
  if (napi_get_value_string_utf8(env, argv[0], ifname, sizeof ifname, &len) != napi_ok || len == 0 || len >= IFNAMSIZ - 1) {
    napi_throw_type_error(env, NULL, "setArp: ifname must be a non-empty interface name");
    return NULL;
  }
  uint32_t ip = 0;
  if (napi_get_value_uint32(env, argv[1], &ip) != napi_ok) {
    napi_throw_type_error(env, NULL, "setArp: ip must be a uint32");
    return NULL;
  }
  void *mac = NULL;
  size_t maclen = 0;
  if (napi_get_buffer_info(env, argv[2], &mac, &maclen) != napi_ok || maclen != 6) {
    napi_throw_type_error(env, NULL, "setArp: mac must be a 6-byte Buffer");
    return NULL;
  }
  int err = 0;
  if (arp_fd < 0) arp_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (arp_fd < 0) {
    err = errno;
  } else {
    struct arpreq req;
    memset(&req, 0, sizeof req);
    struct sockaddr_in *pa = (struct sockaddr_in *)&req.arp_pa;
    pa->sin_family = AF_INET;
    pa->sin_addr.s_addr = htonl(ip);
    req.arp_ha.sa_family = ARPHRD_ETHER;
    memcpy(req.arp_ha.sa_data, mac, 6);
    // ATF_COM without ATF_PERM: a complete entry that ages out like a learnt one (the client answers ARP
    // itself once it has configured the address).
    req.arp_flags = ATF_COM;
    memcpy(req.arp_dev, ifname, len + 1);
    if (ioctl(arp_fd, SIOCSARP, &req) < 0) err = errno;
  }
  napi_create_int32(env, err, &result);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "setArp", NAPI_AUTO_LENGTH, set_arp, NULL, &fn);
  napi_set_named_property(env, exports, "setArp", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
