/**
 * Gradient utilities shared by the model and the trainers.
 * @module
 */
import * as tf from "@tensorflow/tfjs";

/**
 * Identity in the forward pass with a zero gradient (torch's `.detach()`): e.g. the old-policy log-probs
 * when numIterations = 1 (ratio = 1 in value while the gradient flows through `logp`), or the entropy
 * computed from the same forward as the loss.
 */
export const stopGradient: <T extends tf.Tensor>(x: T) => T = tf.customGrad((x, save) => {
  void save;
  return {
    value: (x as tf.Tensor).clone(),
    gradFunc: (dy: tf.Tensor | tf.Tensor[]) => tf.zerosLike(dy as tf.Tensor),
  };
}) as <T extends tf.Tensor>(x: T) => T;
