/* Colour data, part 2: folder:DIR[,LIST] — torchvision's ImageFolder order and labels (sorted
 * class folders, sorted(os.walk(...)) then sorted names: "sub" before "sub-x" before "sub/x"),
 * --limit decoding only the first N, RobustBench's list file, fitting to the consumer's size,
 * and hostile folders: no classes, no images, undecodable files, mixed sizes, symlink loops,
 * thousands of files, the memory cap. Every error names the file. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "data/data_internal.h"
#include "image_fixtures.h"

#define ASSERT_ERR_HAS(needle)                                                                  \
    ASSERT_MSG(strstr(advex_last_error(), needle) != NULL, "error '%s' lacks '%s'", advex_last_error(), needle)

static void mkdirs(const char *root, const char *rel) {
    char p[1024];
    mkdir(root, 0755);
    snprintf(p, sizeof p, "%s/%s", root, rel);
    for (char *s = p + strlen(root) + 1; *s; s++)
        if (*s == '/') { *s = '\0'; mkdir(p, 0755); *s = '/'; }
    mkdir(p, 0755);
}

static const char *at(const char *root, const char *rel) {
    static char buf[4][1024];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", root, rel);
    return buf[k];
}

/* A PNG of w x h whose first pixel's red value is `tag` (to recognise it after loading). */
static int tagged_png(const char *path, int w, int h, int tag) {
    uint8_t *px = fx_pattern(w, h, 3, (unsigned)tag);
    px[0] = (uint8_t)tag;
    int ok = advex_png_write_rgb8(path, px, w, h) == ADVEX_OK;
    free(px);
    return ok;
}

static int first_red(const advex_dataset *d, int64_t i) {
    return (int)(d->x[i * d->c * d->h * d->w] * 255.0f + 0.5f);
}

TEST(folder_order_and_labels_as_imagefolder) {
    const char *root = fx_path("order");
    /* classes: ".hidden" (a class for torchvision too), "Zebra" < "ant" (byte order), "ant" */
    static const char *const dirs[] = {"ant/sub", "ant/sub-x", "ant/sub/x", "Zebra", ".hidden", "empty"};
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) mkdirs(root, dirs[i]);
    struct { const char *rel; int tag; } files[] = {
        {"ant/b.png", 3}, {"ant/A.PNG", 2}, {"ant/sub/z.png", 4}, {"ant/sub-x/a.png", 5}, {"ant/sub/x/a.png", 6},
        {"Zebra/1.png", 1}, {".hidden/h.png", 0}, {"ant/notes.txt", 0},
    };
    for (size_t i = 0; i < sizeof files / sizeof *files; i++)
        ASSERT(strstr(files[i].rel, ".txt") ? fx_write(at(root, files[i].rel), "x", 1)
                                            : tagged_png(at(root, files[i].rel), 6, 5, files[i].tag));
    char spec[1100];
    snprintf(spec, sizeof spec, "folder:%s", root);
    advex_dataset d;
    ASSERT_OK(advex_dataset_load(spec, NULL, 0, &d));
    /* sorted(os.walk): ant, ant/sub, ant/sub-x, ant/sub/x ('-' < '/'); names in byte order */
    static const int want_tag[] = {0, 1, 2, 3, 4, 5, 6};
    static const int want_label[] = {0, 1, 2, 2, 2, 2, 2};
    ASSERT_EQ_INT(d.n, 7);
    ASSERT_EQ_INT(d.num_classes, 4); /* .hidden, Zebra, ant, empty: an empty class counts */
    ASSERT(strcmp(d.class_names[0], ".hidden") == 0 && strcmp(d.class_names[3], "empty") == 0);
    for (int i = 0; i < 7; i++) {
        ASSERT_EQ_INT(first_red(&d, i), want_tag[i]);
        ASSERT_EQ_INT(d.y[i], want_label[i]);
    }
    ASSERT_EQ_INT(d.c, 3);
    advex_dataset_free(&d);
    /* --limit: the first N in that order; the undecodable file after them is never read */
    ASSERT(fx_write(at(root, "ant/zz_broken.png"), "not a png", 9));
    ASSERT_OK(advex_dataset_load(spec, NULL, 3, &d));
    ASSERT_EQ_INT(d.n, 3);
    ASSERT_EQ_INT(first_red(&d, 2), 2);
    advex_dataset_free(&d);
    ASSERT_STATUS(advex_dataset_load(spec, NULL, 0, &d), ADVEX_ERR_FORMAT);
    ASSERT_ERR_HAS("ant/zz_broken.png: not a PNG or JPEG file");
    ASSERT(unlink(at(root, "ant/zz_broken.png")) == 0);
    /* listed like torchvision (.bmp is an image extension there), refused when read */
    ASSERT(fx_write(at(root, "Zebra/2.bmp"), "BM", 2));
    ASSERT_STATUS(advex_dataset_load(spec, NULL, 0, &d), ADVEX_ERR_FORMAT);
    ASSERT_ERR_HAS("Zebra/2.bmp: not a PNG or JPEG file (advex reads PNG and JPEG images)");
    ASSERT(unlink(at(root, "Zebra/2.bmp")) == 0);
    /* one channel for a grey consumer (PIL's convert("L")) */
    advex_data_expect grey = {1, 5, 6, 0};
    ASSERT_OK(advex_dataset_load_prep(spec, NULL, NULL, 0, &grey, NULL, &d));
    ASSERT_EQ_INT(d.c, 1);
    advex_dataset_free(&d);
}

TEST(folder_list_file_robustbench) {
    const char *root = fx_path("rb");
    mkdirs(root, "n01");
    mkdirs(root, "n02");
    mkdirs(root, "n03");
    ASSERT(tagged_png(at(root, "n01/ILSVRC2012_val_00000001.JPEG.png"), 4, 4, 11));
    ASSERT(fx_write_jpeg(at(root, "n03/ILSVRC2012_val_00000002.JPEG"), 4, 4, 3, 1));
    ASSERT(tagged_png(at(root, "n02/c.png"), 4, 4, 22));
    /* RobustBench's file: "class/file" lines, no newline at the end; labels from DIR's folders */
    const char *list = fx_path("ids.txt");
    const char *text = "n03/ILSVRC2012_val_00000002.JPEG\nn01/ILSVRC2012_val_00000001.JPEG.png\r\n\nn02/c.png";
    ASSERT(fx_write(list, text, strlen(text)));
    char spec[2100];
    snprintf(spec, sizeof spec, "folder:%s,%s", root, list);
    advex_dataset d;
    ASSERT_OK(advex_dataset_load(spec, NULL, 0, &d));
    ASSERT_EQ_INT(d.n, 3);
    ASSERT_EQ_INT(d.y[0], 2);
    ASSERT_EQ_INT(d.y[1], 0);
    ASSERT_EQ_INT(d.y[2], 1);
    ASSERT_EQ_INT(first_red(&d, 1), 11);
    ASSERT_EQ_INT(first_red(&d, 2), 22);
    advex_dataset_free(&d);
    ASSERT_OK(advex_dataset_load(spec, NULL, 1, &d)); /* the first N lines */
    ASSERT_EQ_INT(d.n, 1);
    ASSERT_EQ_INT(d.y[0], 2);
    advex_dataset_free(&d);
    const char *bad = "n01/ILSVRC2012_val_00000001.JPEG.png\nn09/x.JPEG\n";
    ASSERT(fx_write(list, bad, strlen(bad)));
    ASSERT_STATUS(advex_dataset_load(spec, NULL, 0, &d), ADVEX_ERR_FORMAT);
    ASSERT_ERR_HAS("ids.txt:2: class folder 'n09' is not in");
    ASSERT(fx_write(list, "noslash\n", 8));
    ASSERT_STATUS(advex_dataset_load(spec, NULL, 0, &d), ADVEX_ERR_FORMAT);
    ASSERT_ERR_HAS("ids.txt:1: 'noslash' is not class/file");
    ASSERT(fx_write(list, "n01/missing.JPEG\n", 17));
    ASSERT_STATUS(advex_dataset_load(spec, NULL, 0, &d), ADVEX_ERR_IO);
    ASSERT_ERR_HAS("n01/missing.JPEG: No such file");
    ASSERT(fx_write(list, "\n\n", 2));
    ASSERT_STATUS(advex_dataset_load(spec, NULL, 0, &d), ADVEX_ERR_FORMAT);
    ASSERT_ERR_HAS("ids.txt: lists no images");
    snprintf(spec, sizeof spec, "folder:%s,%s", root, fx_path("no-such-list.txt"));
    ASSERT_STATUS(advex_dataset_load(spec, NULL, 0, &d), ADVEX_ERR_IO);
    ASSERT_ERR_HAS("no-such-list.txt: No such file");
}

TEST(folder_sizes_fit_and_prep) {
    const char *root = fx_path("sizes");
    mkdirs(root, "a");
    ASSERT(tagged_png(at(root, "a/1.png"), 40, 30, 1));
    ASSERT(fx_write_jpeg(at(root, "a/2.jpg"), 30, 50, 3, 2));
    char spec[1100];
    snprintf(spec, sizeof spec, "folder:%s", root);
    advex_dataset d;
    ASSERT_STATUS(advex_dataset_load(spec, NULL, 0, &d), ADVEX_ERR_SHAPE); /* different sizes, nothing to fit to */
    ASSERT_ERR_HAS("a/2.jpg: image is 30x50 (width x height) after preprocessing but");
    ASSERT_ERR_HAS("a/1.png gave 40x30; pass --crop C");
    advex_data_prep prep = {20, 16, 0};
    ASSERT_OK(advex_dataset_load_prep(spec, NULL, NULL, 0, NULL, &prep, &d));
    ASSERT_EQ_INT(d.h, 16);
    ASSERT_EQ_INT(d.w, 16);
    ASSERT_EQ_INT(d.fitted, 0);
    advex_dataset_free(&d);
    /* fit: to the consumer's 24 x 24 (shorter side 24, centre crop) and counted */
    advex_data_prep fit = {0, 0, 1};
    advex_data_expect want = {3, 24, 24, 1};
    ASSERT_OK(advex_dataset_load_prep(spec, NULL, NULL, 0, &want, &fit, &d));
    ASSERT_EQ_INT(d.fitted, 2);
    ASSERT_EQ_INT(d.h, 24);
    advex_dataset_free(&d);
    want = (advex_data_expect){3, 30, 40, 1}; /* the PNG is already 40x30: only the JPEG is fitted */
    ASSERT_OK(advex_dataset_load_prep(spec, NULL, NULL, 0, &want, &fit, &d));
    ASSERT_EQ_INT(d.fitted, 1);
    advex_dataset_free(&d);
    ASSERT_STATUS(advex_dataset_load_prep(spec, NULL, NULL, 0, &want, NULL, &d), ADVEX_ERR_SHAPE); /* no fit */
    advex_data_prep only_resize = {24, 0, 1};
    want = (advex_data_expect){3, 24, 24, 1};
    ASSERT_STATUS(advex_dataset_load_prep(spec, NULL, NULL, 0, &want, &only_resize, &d), ADVEX_ERR_SHAPE);
    ASSERT_ERR_HAS("a/1.png: image is 32x24 (width x height) after --resize/--crop but the model expects 24x24");
    want = (advex_data_expect){2, 24, 24, 1};
    ASSERT_STATUS(advex_dataset_load_prep(spec, NULL, NULL, 0, &want, &fit, &d), ADVEX_ERR_SHAPE);
    /* one image file alone (attack --input) */
    float *x;
    int64_t c, h, w;
    int fitted;
    want = (advex_data_expect){1, 28, 28, 10};
    ASSERT_OK(advex_image_load(at(root, "a/2.jpg"), &want, &fit, &x, &c, &h, &w, &fitted));
    ASSERT(c == 1 && h == 28 && w == 28 && fitted == 1);
    free(x);
    /* the memory cap covers the whole data set (2 x 3 x 300 x 300 floats), before decoding more */
    advex_data_prep big = {300, 300, 0};
    advex_set_memory_limit(1 << 20);
    ASSERT_STATUS(advex_dataset_load_prep(spec, NULL, NULL, 0, NULL, &big, &d), ADVEX_ERR_LIMIT);
    ASSERT_ERR_HAS("a/1.png: memory limit: 2 examples need");
    advex_set_memory_limit(0);
}

TEST(folder_hostile) {
    const char *root = fx_path("hostile");
    char spec[1100];
    advex_dataset d;
    mkdirs(root, "x");
    snprintf(spec, sizeof spec, "folder:%s", root);
    ASSERT_STATUS(advex_dataset_load(spec, NULL, 0, &d), ADVEX_ERR_FORMAT);
    ASSERT_ERR_HAS("no image files (.png, .jpg, .jpeg) in its class sub-folders");
    ASSERT(fx_write(at(root, "loose.png"), "x", 1)); /* files beside the class folders are not images */
    ASSERT_STATUS(advex_dataset_load(spec, NULL, 0, &d), ADVEX_ERR_FORMAT);
    const char *flat = fx_path("flat");
    mkdirs(flat, "");
    snprintf(spec, sizeof spec, "folder:%s", flat);
    ASSERT_STATUS(advex_dataset_load(spec, NULL, 0, &d), ADVEX_ERR_FORMAT);
    ASSERT_ERR_HAS("flat: no class sub-folders");
    ASSERT_STATUS(advex_dataset_load("folder:", NULL, 0, &d), ADVEX_ERR_ARG);
    ASSERT_STATUS(advex_dataset_load("folder:/nonexistent-advex", NULL, 0, &d), ADVEX_ERR_IO);
    ASSERT_ERR_HAS("folder: /nonexistent-advex: No such file");
    /* a symbolic link loop: os.walk(followlinks=True) would not end either; here it stops */
    ASSERT_EQ_INT(symlink(".", at(root, "x/loop")), 0);
    snprintf(spec, sizeof spec, "folder:%s", root);
    ASSERT_STATUS(advex_dataset_load(spec, NULL, 0, &d), ADVEX_ERR_LIMIT);
    ASSERT_ERR_HAS("folders nested deeper than 32 (a symbolic link loop?)");
    ASSERT_EQ_INT(unlink(at(root, "x/loop")), 0);
    /* a PNG header claiming 100000 x 100000 among good images: the limit names the file */
    ASSERT(tagged_png(at(root, "x/a.png"), 3, 3, 1));
    uint8_t *px = fx_pattern(8, 8, 3, 9);
    unsigned char *buf;
    unsigned long n;
    ASSERT(fx_jpeg(px, 8, 8, 3, 90, 0, &buf, &n));
    fx_jpeg_set_size(buf, n, 40000, 40000);
    ASSERT(fx_write(at(root, "x/b.jpg"), buf, n));
    ASSERT_STATUS(advex_dataset_load(spec, NULL, 0, &d), ADVEX_ERR_LIMIT);
    ASSERT_ERR_HAS("x/b.jpg: JPEG of 40000x40000 pixels");
    ASSERT(fx_write(at(root, "x/b.jpg"), buf, n / 2)); /* truncated */
    ASSERT_STATUS(advex_dataset_load(spec, NULL, 0, &d), ADVEX_ERR_FORMAT);
    ASSERT_ERR_HAS("x/b.jpg: ");
    free(buf);
    free(px);
}

TEST(folder_thousands_of_files) {
    const char *root = fx_path("many");
    mkdirs(root, "c0");
    mkdirs(root, "c1");
    /* one tiny PNG copied 3000 times: listed and sorted; --limit 4 decodes 4 */
    ASSERT(tagged_png(at(root, "c0/seed.png"), 2, 2, 7));
    FILE *f = fopen(at(root, "c0/seed.png"), "rb");
    unsigned char png[512];
    size_t n = fread(png, 1, sizeof png, f);
    fclose(f);
    char rel[64];
    for (int i = 0; i < 3000; i++) {
        snprintf(rel, sizeof rel, "c%d/%05d.png", i % 2, 2999 - i);
        ASSERT(fx_write(at(root, rel), png, n));
    }
    ASSERT(fx_write(at(root, "c1/99999.png"), "junk", 4)); /* last in c1: never reached below */
    char spec[1100];
    snprintf(spec, sizeof spec, "folder:%s", root);
    advex_dataset d;
    ASSERT_OK(advex_dataset_load(spec, NULL, 4, &d));
    ASSERT_EQ_INT(d.n, 4);
    ASSERT_EQ_INT(d.y[3], 0);
    advex_dataset_free(&d);
    ASSERT_OK(advex_dataset_load(spec, NULL, 2999, &d)); /* 1501 in c0 (with seed.png), 1498 in c1 */
    ASSERT_EQ_INT(d.y[1500], 0);
    ASSERT_EQ_INT(d.y[1501], 1);
    advex_dataset_free(&d);
    ASSERT_STATUS(advex_dataset_load(spec, NULL, 0, &d), ADVEX_ERR_FORMAT);
    ASSERT_ERR_HAS("c1/99999.png: not a PNG or JPEG file");
}

TEST_MAIN(TEST_ENTRY(folder_order_and_labels_as_imagefolder), TEST_ENTRY(folder_list_file_robustbench),
          TEST_ENTRY(folder_sizes_fit_and_prep), TEST_ENTRY(folder_hostile), TEST_ENTRY(folder_thousands_of_files))
