/*
 * reload: SIGHUP. Re-read the configuration file; a bad file is reported
 * and the running configuration stays. Settings that can change at run
 * time are applied ([log] level, [node] status_interval, [coordinator]
 * refresh); any other change is reported as needing a restart.
 */
#ifndef JGA_RELOAD_H
#define JGA_RELOAD_H

struct config;

void reload_config(struct config *running);

#endif
