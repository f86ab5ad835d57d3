build-asan/common/secret.o: common/secret.c common/secret.h \
 common/xalloc.h
common/secret.h:
common/xalloc.h:
