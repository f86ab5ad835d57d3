build-asan/common/params.o: common/params.c common/params.h \
 common/xalloc.h
common/params.h:
common/xalloc.h:
