build-asan/common/gwconn.o: common/gwconn.c common/gwconn.h \
 common/clock.h common/xalloc.h
common/gwconn.h:
common/clock.h:
common/xalloc.h:
