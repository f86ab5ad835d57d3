build-asan/common/xmlscan.o: common/xmlscan.c common/xmlscan.h \
 common/buf.h common/errmsg.h common/xalloc.h
common/xmlscan.h:
common/buf.h:
common/errmsg.h:
common/xalloc.h:
