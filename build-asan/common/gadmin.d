build-asan/common/gadmin.o: common/gadmin.c common/gadmin.h common/buf.h \
 common/clock.h common/gwconn.h common/xalloc.h
common/gadmin.h:
common/buf.h:
common/clock.h:
common/gwconn.h:
common/xalloc.h:
