/* libFuzzer: an INI configuration file (common/config.c, inih). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>
#include "config.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char path[64];
	struct config cfg;
	char err[1024];

	if (fd < 0) {
		fd = memfd_create("fuzz.ini", 0);
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		return 0;
	if (config_load(path, &cfg, err, sizeof(err)) == 0)
		config_free(&cfg);
	return 0;
}
