#!/bin/busybox sh
# /init of the test VM's initramfs (scripts/test-kernel.mjs builds it; test/vm/README.md). PID 1:
# mounts the host's root file system (read-only) and the checkout (read-write) over 9p, prepares
# writable places, runs test/vm/inside.sh in a chroot of the host's root and powers off, whatever
# happens. The run's share (/vmrun) brings run.sh and env.sh in and takes exit-code out.
/bin/busybox mkdir -p /proc /sys /dev /sbin /usr/bin /usr/sbin /root /vmrun /lib/modules
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

# If anything below fails there is no shell to fall back to: power off, and the runner, finding
# no exit code, fails the run. (Should init itself die, panic=-1 and -no-reboot end qemu.)
die() { echo "vm: $*" > /dev/console; sync; poweroff -f; }

# The modules the 9p mounts need, in dependency order (test/vm/boot-modules.txt).
for m in $(cat /boot-modules/order); do
  insmod "/boot-modules/$m.ko" || die "insmod $m failed"
done

p9='trans=virtio,version=9p2000.L,msize=512000'
mount -t 9p -o "$p9" vmrun /vmrun || die "cannot mount the run share"
# run.sh sets CHECKOUT, KERNEL_VERSION, MODULES_DIR, HOST_HOME, the host terminal's COLUMNS and
# LINES (empty without one) and the vitest arguments ($@).
. /vmrun/run.sh
# The host's files do not change during a run: let the guest cache them (much faster under TCG).
mount -t 9p -o "$p9,cache=loose,ro" hostroot /root || die "cannot mount the host root"

# The kernel runs request_module's modprobe in this root (kthreadd's), not in the chroot: give it
# busybox's modprobe and the package's modules (depmod'ed when the cache was made).
mkdir -p "/lib/modules/$KERNEL_VERSION"
mount --bind "/root$MODULES_DIR" "/lib/modules/$KERNEL_VERSION" || die "cannot bind the modules"
echo /sbin/modprobe > /proc/sys/kernel/modprobe

mount -t proc proc /root/proc
mount -t sysfs sysfs /root/sys
mount -t devtmpfs devtmpfs /root/dev
mkdir -p /root/dev/pts /root/dev/shm
mount -t devpts devpts /root/dev/pts
for d in /dev/shm /tmp /run /var/tmp; do
  mount -t tmpfs -o mode=1777 tmpfs "/root$d" || die "cannot mount a tmpfs on $d"
done
# /var/run is a link to /run on Debian; elsewhere give it a tmpfs of its own.
[ -L /root/var/run ] || mount -t tmpfs -o mode=1777 tmpfs /root/var/run
# HOME must be writable (npm and vitest write there): a tmpfs, unless it is /.
case "$HOST_HOME" in
  ''|/) ;;
  *) [ -d "/root$HOST_HOME" ] && mount -t tmpfs tmpfs "/root$HOST_HOME" ;;
esac
# modprobe and lsmod inside the chroot too, where the host has a modules folder to mount over.
if [ -d /root/lib/modules ]; then
  mount -t tmpfs tmpfs /root/lib/modules
  mkdir -p "/root/lib/modules/$KERNEL_VERSION"
  mount --bind "/lib/modules/$KERNEL_VERSION" "/root/lib/modules/$KERNEL_VERSION"
fi
# The checkout at its own path, last: it may lie under one of the tmpfs above (a clone in /tmp).
mkdir -p "/root$CHECKOUT"
mount -t 9p -o "$p9" checkout "/root$CHECKOUT" || die "cannot mount the checkout at $CHECKOUT"

# Output is raw bytes for the host's terminal or log: no CR before each LF.
stty -onlcr < /dev/console
[ -n "$COLUMNS" ] && stty cols "$COLUMNS" rows "$LINES" < /dev/console

mkdir -p /root/run/twill-vm
cp /vmrun/env.sh /root/run/twill-vm/env.sh
env -i chroot /root /bin/sh "$CHECKOUT/test/vm/inside.sh" "$@" < /dev/console > /dev/console 2>&1
echo "$?" > /vmrun/exit-code
sync
umount "/root$CHECKOUT" 2>/dev/null
poweroff -f
