/* net.h - loopback port helpers for the local runner and test fixtures. */
#ifndef SPIRT_NET_H
#define SPIRT_NET_H

/* A port that was free a moment ago on 127.0.0.1 (-1 on failure). */
int net_FreePort(void);
/* 1 when something accepts TCP on 127.0.0.1:port. */
int net_PortOpen(int port);

#endif
