build-asan/common/jenkins.o: common/jenkins.c common/jenkins.h \
 common/strvec.h common/buf.h common/errmsg.h common/http.h \
 common/jkmodel.h common/jkpath.h common/xalloc.h
common/jenkins.h:
common/strvec.h:
common/buf.h:
common/errmsg.h:
common/http.h:
common/jkmodel.h:
common/jkpath.h:
common/xalloc.h:
