// Shared by the FUSE adapter's files: fuse_adapter.cpp (the session: mount,
// connection, invalidations, the request loop) and fuse_adapter_ops.cpp (the
// request handlers). These three are the only files that include a libfuse
// header. Not part of the API.
#pragma once

#define FUSE_USE_VERSION 314
#include <fuse_lowlevel.h>

#include <memory>

#include "fs/listing_state.h"
#include "fs/node_table.h"
#include "fs/vfs.h"

namespace recall::fuse_detail {

// What a mount keeps; each request reaches it as the session's user data.
struct Mount {
  std::shared_ptr<Vfs> vfs;
  NodeTable nodes;
  Listings listings;
  StatInterest stat_interest;
  bool no_opendir = false;  // the kernel takes ENOSYS to OPENDIR as "never again"
};

// FUSE_INIT: what the mount asks of the kernel (fuse_adapter.cpp).
void op_init(void* userdata, struct fuse_conn_info* conn);

// The table of request handlers, op_init among them (fuse_adapter_ops.cpp).
fuse_lowlevel_ops make_operations();

}  // namespace recall::fuse_detail
