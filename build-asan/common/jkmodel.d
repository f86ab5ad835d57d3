build-asan/common/jkmodel.o: common/jkmodel.c common/jkmodel.h \
 common/jenkins.h common/strvec.h common/errmsg.h common/jarena.h \
 common/jscan.h common/xalloc.h common/xmlscan.h common/buf.h
common/jkmodel.h:
common/jenkins.h:
common/strvec.h:
common/errmsg.h:
common/jarena.h:
common/jscan.h:
common/xalloc.h:
common/xmlscan.h:
common/buf.h:
