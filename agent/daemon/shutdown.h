/*
 * shutdown: the daemon's one piece of global state — whether it was asked
 * to stop — and the signal handling that sets it.
 *
 * The main thread blocks the signals before starting any thread (so every
 * thread inherits the mask) and then waits for them with sigwait: no code
 * runs in signal-handler context. Worker threads poll shutdown_requested()
 * and sleep with shutdown_sleep_ms(), which returns early on a stop.
 */
#ifndef JGA_SHUTDOWN_H
#define JGA_SHUTDOWN_H

#include <stdbool.h>

/* Block SIGTERM, SIGINT, SIGQUIT and SIGHUP in the calling thread (call first). */
void shutdown_init(void);
/* Main thread: wait up to timeout_ms for one of those signals; 0 on timeout. */
int  shutdown_wait_signal(long timeout_ms);
void shutdown_request(void);
bool shutdown_requested(void);
/* Sleep up to ms; returns true if a stop was requested (before or during). */
bool shutdown_sleep_ms(long ms);

#endif
