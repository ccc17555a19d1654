/* peer_check.h - what the peers' databases hold at the end of a run.
 *
 * The fault-tolerance claim is that peers which failed and rejoined end with
 * the same model as the others. The driver reads each peer's params:<p>
 * blob straight from its Redis and reports a CRC-32C of it with the peer's
 * applied marker, so a report (and a test) can see that the live peers
 * agree without trusting any step's word for it. */
#ifndef SPIRT_PEER_CHECK_H
#define SPIRT_PEER_CHECK_H

#include <cJSON.h>

#include "store/store.h"

/* [{"peer","applied","crc32c"} | {"peer","error"}] for peers[which[i]];
 * *agree = 1 when every one was read and all digests are equal. */
cJSON *peercheck_Models(const store_addr *peers, const int *which, int n, const char *job,
                        int *agree);

/* For peercheck_Models' array: 1 when its peers do not all hold one model,
 * with msg naming those that differ - off the model most of them hold
 * (ties: the lowest peer's), or unreadable - and that model's holders;
 * 0 (msg "") when they agree. */
int peercheck_Differ(const cJSON *models, char *msg, size_t cap);

#endif
