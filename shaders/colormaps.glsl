// Colormaps: polynomial fits of matplotlib's viridis and magma (Matt Zucconi's fits, CC0), cividis as nine
// equally spaced stops of matplotlib's table (linear in between), grayscale, and a blue-white-red diverging
// map (Moreland's cool-warm end points) for signed matrices.
vec3 viridis(float t) {
  const vec3 c0 = vec3(0.2777273272234177, 0.005407344544966578, 0.3340998053353061);
  const vec3 c1 = vec3(0.1050930431085774, 1.404613529898575, 1.384590162594685);
  const vec3 c2 = vec3(-0.3308618287255563, 0.214847559468213, 0.09509516302823659);
  const vec3 c3 = vec3(-4.634230498983486, -5.799100973351585, -19.33244095627987);
  const vec3 c4 = vec3(6.228269936347081, 14.17993336680509, 56.69055260068105);
  const vec3 c5 = vec3(4.776384997670288, -13.74514537774601, -65.35303263337234);
  const vec3 c6 = vec3(-5.435455855934631, 4.645852612178535, 26.3124352495832);
  return c0 + t * (c1 + t * (c2 + t * (c3 + t * (c4 + t * (c5 + t * c6)))));
}
vec3 magma(float t) {
  const vec3 c0 = vec3(-0.002136485053939582, -0.000749655052795221, -0.005386127855323933);
  const vec3 c1 = vec3(0.2516605407371642, 0.6775232436837668, 2.494026599312351);
  const vec3 c2 = vec3(8.353717279216625, -3.577719514958484, 0.3144679030132573);
  const vec3 c3 = vec3(-27.66873308576866, 14.26473078096533, -13.64921318813922);
  const vec3 c4 = vec3(52.17613981234068, -27.94360607168351, 12.94416944238394);
  const vec3 c5 = vec3(-50.76852536473588, 29.04658282127291, 4.23415299384598);
  const vec3 c6 = vec3(18.65570506591883, -11.48977351997711, -5.601961508734096);
  return c0 + t * (c1 + t * (c2 + t * (c3 + t * (c4 + t * (c5 + t * c6)))));
}
vec3 cividis(float t) {
  const vec3 s[9] = vec3[9](vec3(0.000, 0.133, 0.306), vec3(0.102, 0.220, 0.435), vec3(0.263, 0.306, 0.424),
                            vec3(0.380, 0.396, 0.435), vec3(0.490, 0.486, 0.471), vec3(0.608, 0.580, 0.463),
                            vec3(0.737, 0.682, 0.424), vec3(0.871, 0.788, 0.345), vec3(0.996, 0.910, 0.220));
  float x = clamp(t, 0.0, 1.0) * 8.0;
  int i = min(int(x), 7);
  return mix(s[i], s[i + 1], x - float(i));
}
// t in [0,1], 0.5 = zero.
vec3 diverging(float t) {
  const vec3 cold = vec3(0.230, 0.299, 0.754), mid = vec3(0.865, 0.865, 0.865), warm = vec3(0.706, 0.016, 0.150);
  return t < 0.5 ? mix(cold, mid, t * 2.0) : mix(mid, warm, t * 2.0 - 1.0);
}
