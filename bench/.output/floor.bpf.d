.output/floor.bpf.o: floor.bpf.c ../vmlinux/x86/vmlinux.h

../vmlinux/x86/vmlinux.h:
