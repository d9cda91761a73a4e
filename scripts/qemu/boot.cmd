# Mender's U-Boot boot logic for the QEMU x86 test device, run by Debian's u-boot-qemu
# (qemu-x86), whose distro boot finds this script on the boot partition (compile it with
# `mkimage -A x86 -T script -C none -d boot.cmd boot.scr`).
#
# meta-mender builds the same logic into U-Boot itself (env_mender.h, CONFIG_BOOTCOUNT_LIMIT
# with CONFIG_BOOTCOUNT_ENV, the environment in two redundant copies on the disk). Debian's
# U-Boot keeps its environment nowhere and has no boot count, so this script does what those
# options do, with U-Boot's own commands: it loads the newer valid copy of the redundant
# environment from the disk (where fw_printenv/fw_setenv on the device read and write it),
# counts boots while an update is on trial, falls back to the other root filesystem once
# bootcount exceeds bootlimit, saves the environment back, and boots the kernel and initramfs
# from /boot of the active root filesystem.
#
# Environment copies: byte offsets 0x800000 and 0x1000000 (sectors 0x4000 and 0x8000), 0x20000
# bytes each (0x100 sectors): CRC-32, a flag byte, then the variables (0x1fffb bytes).
# Memory: copy 1 read at 0x7100000, copy 2 at 0x7200000; their CRC + data (the layout
# `env import -c` takes) at 0x7300000 and 0x7400000; the copy to write at 0x7500000.

echo "mender: loading the boot environment from virtio 0"
virtio read 0x7100000 0x4000 0x100
virtio read 0x7200000 0x8000 0x100
cp.b 0x7100000 0x7300000 4
cp.b 0x7100005 0x7300004 0x1fffb
cp.b 0x7200000 0x7400000 4
cp.b 0x7200005 0x7400004 0x1fffb

# The newer copy by its flag, as libubootenv and U-Boot decide: the higher one, 0 after 255;
# on a tie the first copy.
setenv mender_env_newer 1
if itest.b *0x7100004 == 0xff && itest.b *0x7200004 == 0; then
  setenv mender_env_newer 2
elif itest.b *0x7200004 == 0xff && itest.b *0x7100004 == 0; then
  setenv mender_env_newer 1
elif itest.b *0x7200004 > *0x7100004; then
  setenv mender_env_newer 2
fi
# Import the newer copy, or the other when the newer fails its CRC (a write cut short); the
# flag byte of the copy taken is kept for writing back.
if test "${mender_env_newer}" = 1; then
  if env import -c 0x7300000 0x1ffff; then cp.b 0x7100004 0x7500004 1;
  elif env import -c 0x7400000 0x1ffff; then cp.b 0x7200004 0x7500004 1;
  else echo "mender: no valid boot environment, using the defaults"; mw.b 0x7500004 0 1; fi
else
  if env import -c 0x7400000 0x1ffff; then cp.b 0x7200004 0x7500004 1;
  elif env import -c 0x7300000 0x1ffff; then cp.b 0x7100004 0x7500004 1;
  else echo "mender: no valid boot environment, using the defaults"; mw.b 0x7500004 0 1; fi
fi
env exists mender_boot_part || setenv mender_boot_part 2
env exists mender_boot_part_hex || setenv mender_boot_part_hex 2
env exists bootlimit || setenv bootlimit 1
env exists bootcount || setenv bootcount 0
env exists upgrade_available || setenv upgrade_available 0
env exists mender_kernel_name || setenv mender_kernel_name bzImage
env exists mender_initrd_name || setenv mender_initrd_name initrd.img

# Saving writes the same bytes to both copies, the first one first: cut short during the first
# write, the second (old) copy is still valid; cut short during the second, the first (new,
# flag equal or higher) wins.
setenv mender_save_env 'env export -c -s 0x1ffff 0x7300000; cp.b 0x7300000 0x7500000 4; cp.b 0x7300004 0x7500005 0x1fffb; virtio write 0x7500000 0x4000 0x100; virtio write 0x7500000 0x8000 0x100'

# CONFIG_BOOTCOUNT_ENV: count boots while an update is on trial (this U-Boot has no setexpr).
if test "${upgrade_available}" = 1; then
  if test "${bootcount}" = 0; then setenv bootcount 1;
  elif test "${bootcount}" = 1; then setenv bootcount 2;
  elif test "${bootcount}" = 2; then setenv bootcount 3;
  else setenv bootcount 4; fi
  run mender_save_env
fi
# CONFIG_BOOTCOUNT_LIMIT with meta-mender's altbootcmd (mender_altbootcmd): past the limit,
# go back to the other root filesystem and end the trial.
if test "${upgrade_available}" = 1 && itest ${bootcount} > ${bootlimit}; then
  echo "mender: bootcount ${bootcount} exceeds bootlimit ${bootlimit}: falling back"
  if test "${mender_boot_part}" = 2; then
    setenv mender_boot_part 3; setenv mender_boot_part_hex 3
  else
    setenv mender_boot_part 2; setenv mender_boot_part_hex 2
  fi
  setenv upgrade_available 0
  run mender_save_env
fi

# mender_setup
setenv mender_kernel_root /dev/vda${mender_boot_part}
setenv mender_uboot_root "virtio 0:${mender_boot_part_hex}"
echo "mender: booting partition ${mender_boot_part} (upgrade_available=${upgrade_available} bootcount=${bootcount})"
setenv bootargs "root=${mender_kernel_root} ro rootwait console=ttyS0,115200 panic=5"
# The initramfs goes above where this kernel unpacks itself.
if load ${mender_uboot_root} ${kernel_addr_r} /boot/${mender_kernel_name} && load ${mender_uboot_root} 0x8000000 /boot/${mender_initrd_name}; then
  zboot ${kernel_addr_r} 0 0x8000000 ${filesize}
fi
# mender_try_to_recover: the kernel did not start; on trial, reset so that the boot count
# brings the other root filesystem back.
echo "mender: cannot boot partition ${mender_boot_part}"
if test "${upgrade_available}" = 1; then reset; fi
