/*
 * cs_version: the one version string of custos, used by custosd
 * (--version, the status response, snapshot headers, the HTTP health
 * endpoint through status) and the CLI (custos --version).  Change it here
 * only; docs quoting a status output show it as an example.
 */
#ifndef CS_VERSION_H
#define CS_VERSION_H

#define CS_VERSION "0.1.0"

#endif
