// config_env.h — what the configuration tests (config_test.cc,
// access_test.cc) share: made-up public keys and a clean SRMUDP_*
// environment.
#ifndef CONFIG_ENV_H
#define CONFIG_ENV_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <string>
#include <vector>

extern "C" {
#include "srmudp.h"
}

extern char **environ;

// A public key as text, distinct per seed.
inline std::string Key(unsigned seed)
{
	uint8_t pub[SRM_KEY_BYTES];
	uint32_t x = seed * 2654435761u + 12345u;
	for (auto &b : pub) {
		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		b = (uint8_t)x;
	}
	char text[SRM_PUBKEY_TEXT_BYTES];
	srm_pubkey_encode(pub, text);
	return text;
}

// Unset every SRMUDP_* variable.
inline void ClearSrmudpEnv()
{
	std::vector<std::string> names;
	for (char **e = environ; *e; e++)
		if (strncmp(*e, "SRMUDP_", 7) == 0)
			names.emplace_back(*e, strcspn(*e, "="));
	for (auto &n : names)
		unsetenv(n.c_str());
}

#endif
