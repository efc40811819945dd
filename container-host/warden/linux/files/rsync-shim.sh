#!/bin/sh
# rsync's "remote shell" for copy_in/copy_out: rsync calls it as `<shim> <host> rsync --server
# --daemon .`; instead of reaching a host we start the daemon side here, with the container's
# module configuration (DW_RSYNC_CONF) that chroots into the container's root.
shift 2
exec "$DW_RSYNC" --config="$DW_RSYNC_CONF" "$@"
