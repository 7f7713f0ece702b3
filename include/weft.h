/*
 * weft.h — the whole public API of weft. Include this, or only the layers
 * you use from include/weft/.
 */
#ifndef WEFT_H
#define WEFT_H

#include <weft/cluster.h>
#include <weft/core.h>
#include <weft/exec.h>
#include <weft/gen.h>
#include <weft/hub.h>
#include <weft/io.h>
#include <weft/ipc.h>
#include <weft/proc.h>
#include <weft/shm.h>
#include <weft/sync.h>
#include <weft/thread.h>

#endif /* WEFT_H */
