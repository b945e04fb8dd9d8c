/* Linked -static: the loader never runs, so no preload library can follow it. */
#include <stdio.h>
int main(void) {
    puts("static hello");
    return 0;
}
