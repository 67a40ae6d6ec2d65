/* Losses on logits (n, c) with integer labels: cross-entropy (stable log-softmax), the
 * C&W margin and Croce & Hein's DLR; per-example values and d loss / d logits (sum
 * reduction). Labels outside [0, c) give loss 0 and a zero gradient row. */
#include <math.h>
#include <string.h>

#include "internal.h"

/* index of the largest z_j, j != skip (first on ties); -1 if none */
static int64_t argmax_except(const float *z, int64_t c, int64_t skip) {
    int64_t best = -1;
    for (int64_t j = 0; j < c; j++)
        if (j != skip && (best < 0 || z[j] > z[best])) best = j;
    return best;
}

/* CE: l = log sum_j e^{z_j} - z_y;  dl/dz = softmax(z) - onehot(y) */
static double ce(const float *z, int64_t c, int64_t y, float *g) {
    float mx = z[0];
    for (int64_t j = 1; j < c; j++) mx = fmaxf(mx, z[j]);
    double s = 0.0;
    for (int64_t j = 0; j < c; j++) s += exp((double)z[j] - mx);
    double lse = mx + log(s);
    if (g) {
        for (int64_t j = 0; j < c; j++) g[j] = (float)(exp((double)z[j] - lse));
        g[y] -= 1.0f;
    }
    return lse - z[y];
}

/* CW: l = max_{j != y} z_j - z_y;  dl/dz = onehot(j*) - onehot(y) */
static double cw(const float *z, int64_t c, int64_t y, float *g) {
    int64_t o = argmax_except(z, c, y);
    if (o < 0) return 0.0; /* one class */
    if (g) {
        g[o] += 1.0f;
        g[y] -= 1.0f;
    }
    return (double)z[o] - z[y];
}

/* DLR: l = -(z_y - max_{j != y} z_j) / (z_pi1 - z_pi3 + 1e-12), pi sorting z descending */
static double dlr(const float *z, int64_t c, int64_t y, float *g) {
    if (c < 3) return 0.0; /* undefined; callers check c >= 3 */
    int64_t p1 = -1, p2 = -1, p3 = -1; /* top three indices (first on ties) */
    for (int64_t j = 0; j < c; j++) {
        if (p1 < 0 || z[j] > z[p1]) { p3 = p2; p2 = p1; p1 = j; }
        else if (p2 < 0 || z[j] > z[p2]) { p3 = p2; p2 = j; }
        else if (p3 < 0 || z[j] > z[p3]) { p3 = j; }
    }
    int64_t o = argmax_except(z, c, y);
    double num = (double)z[y] - z[o];
    double den = (double)z[p1] - z[p3] + 1e-12;
    if (g) { /* dl = -dnum/den + num/den^2 dden */
        double a = 1.0 / den, b = num / (den * den);
        g[y] -= (float)a;
        g[o] += (float)a;
        g[p1] += (float)b;
        g[p3] -= (float)b;
    }
    return -num / den;
}

double advex_loss_forward_backward(advex_loss kind, const float *logits, const int32_t *y,
                                   int64_t n, int64_t c, float *loss, float *dlogits) {
    double total = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const float *z = logits + i * c;
        float *g = dlogits ? dlogits + i * c : NULL;
        if (g) memset(g, 0, (size_t)c * sizeof(float));
        double l = 0.0;
        int64_t yi = y ? y[i] : -1;
        if (c > 0 && yi >= 0 && yi < c) {
            switch (kind) {
            case ADVEX_LOSS_CE: l = ce(z, c, yi, g); break;
            case ADVEX_LOSS_CW: l = cw(z, c, yi, g); break;
            case ADVEX_LOSS_DLR: l = dlr(z, c, yi, g); break;
            default: break;
            }
        }
        if (loss) loss[i] = (float)l;
        total += l;
    }
    return total;
}

void advex_softmax_rows(const float *z, int64_t n, int64_t c, float *p) {
    for (int64_t i = 0; i < n; i++) {
        const float *zi = z + i * c;
        float mx = zi[0];
        for (int64_t j = 1; j < c; j++) mx = zi[j] > mx ? zi[j] : mx;
        double sum = 0;
        for (int64_t j = 0; j < c; j++) sum += exp((double)(zi[j] - mx));
        for (int64_t j = 0; j < c; j++) p[i * c + j] = (float)(exp((double)(zi[j] - mx)) / sum);
    }
}

int32_t advex_argmax(const float *z, int64_t c) {
    int64_t best = 0;
    for (int64_t j = 1; j < c; j++)
        if (z[j] > z[best]) best = j;
    return (int32_t)best;
}

double advex_train_loss(const float *z, const int32_t *y, int64_t b, int64_t c, int rows2, float w, float beta,
                        float *loss, float *p, float *dl, int64_t bdiv) {
    const double bd = (double)bdiv;
    const float bf = (float)bdiv;
    if (!rows2) { /* mean CE over the b rows */
        double l = advex_loss_forward_backward(ADVEX_LOSS_CE, z, y, b, c, loss, dl) / bd;
        for (int64_t j = 0; j < b * c; j++) dl[j] *= 1.0f / bf;
        return l;
    }
    if (beta < 0) { /* w * CE(x) + (1 - w) * CE(x'): rows [x; x'], y for both halves */
        double lc = advex_loss_forward_backward(ADVEX_LOSS_CE, z, y, 2 * b, c, loss, dl), la = 0;
        for (int64_t j = b; j < 2 * b; j++) la += loss[j];
        for (int64_t j = 0; j < b * c; j++) dl[j] *= w / bf;
        for (int64_t j = b * c; j < 2 * b * c; j++) dl[j] *= (1.0f - w) / bf;
        return (w * (lc - la) + (1.0 - w) * la) / bd;
    }
    /* TRADES: CE(x) + beta * KL(p(x) || p(x')), batch mean, gradients into both halves */
    double lc = advex_loss_forward_backward(ADVEX_LOSS_CE, z, y, b, c, loss, dl), kl = 0;
    advex_softmax_rows(z, 2 * b, c, p);
    for (int64_t i = 0; i < b; i++) {
        const float *pi = p + i * c, *qi = p + (b + i) * c;
        double kli = 0;
        for (int64_t j = 0; j < c; j++)
            if (pi[j] > 0) kli += (double)pi[j] * (log((double)pi[j]) - log((double)qi[j] + 1e-30));
        kl += kli;
        for (int64_t j = 0; j < c; j++) {
            double lj = pi[j] > 0 ? log((double)pi[j]) - log((double)qi[j] + 1e-30) : 0;
            dl[i * c + j] = (dl[i * c + j] + beta * (float)((double)pi[j] * (lj - kli))) / bf;
            dl[(b + i) * c + j] = beta * (qi[j] - pi[j]) / bf;
        }
    }
    return (lc + beta * kl) / bd;
}
