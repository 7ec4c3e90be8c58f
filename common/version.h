/*
 * version: the version of custos, one place for the server (status), the
 * CLI (--version) and the bench.
 */
#ifndef CS_VERSION_H
#define CS_VERSION_H

#define CS_VERSION "0.1.0"

#endif
