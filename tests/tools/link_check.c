/*
 * link_check: an empty program linked with the WHOLE of one static library
 * (every object, not just those main() needs) and only the libraries that
 * library declares it depends on.  It links only if every symbol the
 * library uses is defined by itself or by those dependencies: a library
 * that needs a symbol only custosd (or the CLI) defines fails here, at
 * build time, naming the library.  ctest runs it too (check.link.*).
 */
int main(void) { return 0; }
