build-asan/tests/unit/test_jenkins.o: tests/unit/test_jenkins.c \
 common/jarena.h common/http.h common/buf.h common/jenkins.h \
 common/strvec.h common/jenkins.h common/jkmodel.h common/jkpath.h
common/jarena.h:
common/http.h:
common/buf.h:
common/jenkins.h:
common/strvec.h:
common/jenkins.h:
common/jkmodel.h:
common/jkpath.h:
