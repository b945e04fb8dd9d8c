#include <stdio.h>
int early_marker(void);
int main(void) {
    printf("main %d\n", early_marker());
    return 0;
}
