.output/floor.o: floor.c .output/floor.skel.h
.output/floor.skel.h:
