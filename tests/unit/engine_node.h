// engine_node.h — real engines on loopback for the engine tests
// (engine_test.cc, engine_unreachable_test.cc): a Node is one identity and
// its engine, configured through the public API only.
#ifndef ENGINE_NODE_H
#define ENGINE_NODE_H

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

extern "C" {
#include "srmudp.h"
}

struct Node {
	std::string key_path;
	char pub_text[SRM_PUBKEY_TEXT_BYTES];
	uint8_t pub[SRM_KEY_BYTES];
	srm_engine *engine = nullptr;
	srm_config cfg{};
	std::vector<srm_peer_config> peers;
};

inline std::string temp_dir()
{
	char tmpl[] = "/tmp/srm-engine-test-XXXXXX";
	return std::string(mkdtemp(tmpl));
}

inline sockaddr_storage loopback(int port)
{
	sockaddr_storage ss{};
	auto *v4 = reinterpret_cast<sockaddr_in *>(&ss);
	v4->sin_family = AF_INET;
	v4->sin_port = htons(static_cast<uint16_t>(port));
	v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return ss;
}

// A loopback UDP port held by *fd (nothing answers there); returns it.
inline int quiet_udp_port(int *fd)
{
	*fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	sockaddr_storage addr = loopback(0);
	socklen_t len = sizeof(addr);
	if (*fd < 0 || bind(*fd, (sockaddr *)&addr, sizeof(sockaddr_in)) != 0 ||
	    getsockname(*fd, (sockaddr *)&addr, &len) != 0)
		return -1;
	return ntohs(((sockaddr_in *)&addr)->sin_port);
}

// A fresh key for n, in dir.
inline void node_key(Node &n, const std::string &dir, const char *name)
{
	n.key_path = dir + "/" + name;
	ASSERT_EQ(srm_key_generate(n.key_path.c_str(), n.pub_text), 0);
	ASSERT_EQ(srm_pubkey_decode(n.pub_text, n.pub), 0);
}

// n knows other as name, at loopback UDP port (0: no endpoint).
inline void node_add_peer(Node &n, const char *name, const Node &other, int port)
{
	srm_peer_config pc{};
	snprintf(pc.name, sizeof(pc.name), "%s", name);
	memcpy(pc.pubkey, other.pub, SRM_KEY_BYTES);
	if (port) {
		pc.endpoint = loopback(port);
		pc.endpoint_len = sizeof(sockaddr_in);
	}
	n.peers.push_back(pc);
}

// Start n's engine on loopback UDP port (0: any); log_file non-empty: log
// there at info.
inline void node_start(Node &n, uint32_t connect_timeout_ms, void (*tweak)(srm_config *), int port,
		       const std::string &log_file = "")
{
	srm_config_defaults(&n.cfg);
	if (tweak)
		tweak(&n.cfg);
	snprintf(n.cfg.key_path, sizeof(n.cfg.key_path), "%s", n.key_path.c_str());
	n.cfg.peers = n.peers.data();
	n.cfg.peer_count = n.peers.size();
	n.cfg.listen = loopback(port);
	n.cfg.listen_len = sizeof(sockaddr_in);
	n.cfg.connect_timeout_ms = connect_timeout_ms;
	if (!log_file.empty()) {
		n.cfg.log_level = SRM_LOG_INFO;
		snprintf(n.cfg.log_file, sizeof(n.cfg.log_file), "%s", log_file.c_str());
	}
	char err[256] = "";
	ASSERT_EQ(srm_engine_start(&n.cfg, &n.engine, err, sizeof(err)), 0) << err;
}

#endif
